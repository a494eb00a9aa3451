import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why a running job is asked to stop before it ends by itself.
public enum StopRequest: Int, Sendable {
    /// A client cancelled the job.
    case cancelled = 1
    /// The worker lost the job's delivery (connection loss, consumer timeout): the broker gives
    /// it to another worker, so this run must end and publish nothing.
    case deliveryLost = 2
    /// Graceful shutdown in requeue mode: stop the run, give the job back to the queue.
    case shutdown = 3
}

/// The one thing the broker side and a running job's supervisor share: an atomic
/// stop flag, plus a pipe that wakes the supervisor the moment the flag is set, so a
/// cancel reaches the child in well under a millisecond instead of half a poll interval.
public final class JobControl: Sendable {
    private let request = Atomic<Int>(0)
    let wakeDescriptor: Int32
    private let signalDescriptor: Int32

    public init() {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "pipe() failed")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeDescriptor = fds[0]
        signalDescriptor = fds[1]
    }

    deinit {
        close(wakeDescriptor)
        close(signalDescriptor)
    }

    /// Asks the job to stop. The first request wins; returns whether this one did.
    @discardableResult
    public func requestStop(_ reason: StopRequest) -> Bool {
        let won = request.compareExchange(expected: 0, desired: reason.rawValue, ordering: .acquiringAndReleasing).exchanged
        var byte: UInt8 = 1
        _ = write(signalDescriptor, &byte, 1)
        return won
    }

    /// The pending stop request, if any.
    public var stopRequest: StopRequest? { StopRequest(rawValue: request.load(ordering: .acquiring)) }

    func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 16)
        while read(wakeDescriptor, &buffer, buffer.count) > 0 {}
    }
}
