import GenWorkerCore
import Supervision
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A thread for blocking work (the connection's owner loop, a job's supervisor) that
/// somebody always joins: ``join()`` after the work said it is done, or ``run(_:)`` from
/// async code, which suspends until the thread has ended. Nothing is detached.
final class OwnedThread: @unchecked Sendable {  // `handle` is written once, in init, before use
    private var handle = pthread_t()

    /// Starts `body` on a new thread.
    init(_ body: @escaping @Sendable () -> Void) {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        let status = pthread_create(
            &handle, nil,
            { context in
                Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
                return nil
            }, context)
        // Without a thread the worker cannot run a job or own its connection at all.
        precondition(status == 0, "pthread_create failed: \(status)")
    }

    /// Waits for the thread to end.
    func join() { pthread_join(handle, nil) }

    /// Runs blocking `body` on an owned thread and returns when the thread has ended.
    static func run(_ body: @escaping @Sendable () -> Void) async {
        let started = Mutex<OwnedThread?>(nil)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            // The closure returns before the await can: `started` is set by then.
            let thread = OwnedThread {
                body()
                done.resume()
            }
            started.withLock { $0 = thread }
        }
        started.withLock { $0 }?.join()
    }
}
