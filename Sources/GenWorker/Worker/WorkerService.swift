import Foundation
import ServiceLifecycle

/// The worker as a swift-service-lifecycle `Service`: `run()` owns the worker's loop (on a
/// thread of its own: it blocks) and honours graceful shutdown. On SIGTERM/SIGINT the
/// worker stops taking jobs; `drain` finishes running jobs up to `drainTimeout`, then
/// requeues what is left; `requeue` stops running jobs at once and gives them back.
/// Either way no job is lost, and the worker then returns.
public struct WorkerService: Service {
    public let worker: Worker
    public var mode: ShutdownMode
    public var drainTimeout: Duration

    public init(worker: Worker, mode: ShutdownMode = .drain, drainTimeout: Duration = .seconds(1800)) {
        self.worker = worker
        self.mode = mode
        self.drainTimeout = drainTimeout
    }

    public func run() async throws {
        let worker = self.worker, mode = self.mode, drainTimeout = self.drainTimeout
        await withGracefulShutdownHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    worker.run()
                    done.resume()
                }
            }
        } onGracefulShutdown: {
            worker.requestShutdown(mode)
            if mode == .drain {
                Thread.detachNewThread {
                    Thread.sleep(forTimeInterval: Double(drainTimeout.components.seconds))
                    worker.requestShutdown(.requeue)
                }
            }
        }
    }
}
