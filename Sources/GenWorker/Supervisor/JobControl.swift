import Synchronization
import WakePipe

/// Why a running job is asked to stop before it ends by itself.
public enum StopRequest: Int, Sendable {
    /// A client cancelled the job.
    case cancelled = 1
    /// The worker lost the job's ownership (its lease could not be renewed in the ledger, or
    /// another worker's expiry took it): the job runs elsewhere, so this run must end and publish nothing.
    case ownershipLost = 2
    /// Graceful shutdown in requeue mode: stop the run, give the job back to the queue.
    case shutdown = 3
}

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

    var wakeDescriptor: Int32 { wakeup.readDescriptor }

    func drainWakeups() { wakeup.drain() }
}
