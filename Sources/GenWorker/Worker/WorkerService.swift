import GenWorkerCore
import ServiceLifecycle
import Supervision
import Synchronization

/// The worker as a swift-service-lifecycle `Service`. `run()` runs the worker's owner loop
/// on an owned thread (it blocks) and returns when that thread has ended. On SIGTERM/SIGINT
/// (graceful shutdown) the worker stops taking jobs and, by `mode`, drains (finishes running
/// jobs up to `shutdown.drain_timeout_s`, then requeues the rest) or requeues at once. When
/// its task is cancelled (another service of the group failed) it requeues at once. Either
/// way no job is lost.
public struct WorkerService: Service {
    public let worker: Worker
    public var mode: ShutdownMode
    /// Waited for before the worker connects (the metrics endpoint listening); nil: start at once.
    package var startAfter: AsyncStream<Void>?

    public init(worker: Worker, mode: ShutdownMode? = nil) {
        self.worker = worker
        self.mode = mode ?? worker.configuration.shutdown.mode
    }

    public func run() async throws {
        if let startAfter {
            for await _ in startAfter { break }
            guard !Task.isCancelled else { return }
        }
        let worker = self.worker
        let mode = self.mode
        let failure = Mutex<GenWorkerError?>(nil)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await OwnedThread.run {
                    do throws(GenWorkerError) { try worker.run() } catch { failure.withLock { $0 = error } }
                }
            } onCancel: {
                worker.requestShutdown(.requeue)
            }
        } onGracefulShutdown: {
            worker.requestShutdown(mode)
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
