import GenWorkerCore
import Synchronization
import WakePipe

/// The one thing the broker side and a running job's supervisor share: an atomic
/// stop flag, plus a wake pipe the supervisor polls beside the child's output, so a
/// cancel reaches the child in well under a millisecond instead of half a poll interval.
public final class JobControl: Sendable {
    private let request = Atomic<Int>(0)
    private let wakeup = WakePipe()
    private let requestedAt = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    /// Asks the job to stop. The first request wins; returns whether this one did.
    @discardableResult
    public func requestStop(_ reason: StopRequest) -> Bool {
        let won = request.compareExchange(expected: 0, desired: reason.rawValue, ordering: .acquiringAndReleasing).exchanged
        if won { requestedAt.withLock { $0 = .now } }
        wakeup.signal()
        return won
    }

    /// The pending stop request, if any.
    public var stopRequest: StopRequest? { StopRequest(rawValue: request.load(ordering: .acquiring)) }

    /// When the winning stop request came (for the cancel-latency metric).
    public var stopRequestedAt: ContinuousClock.Instant? { requestedAt.withLock { $0 } }

    package var wakeDescriptor: Int32 { wakeup.readDescriptor }

    package func drainWakeups() { wakeup.drain() }
}
