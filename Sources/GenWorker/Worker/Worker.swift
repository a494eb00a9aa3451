import AMQP
import Foundation
import Logging
import Synchronization

/// A finished run, posted by a job's thread for the connection's owner to publish and ack.
struct FinishedJob: Sendable {
    let deliveryTag: UInt64
    /// Nil when the run must publish nothing (its delivery was lost, or requeue on shutdown).
    let event: JobEvent?
}

/// What the worker does with a running job when asked to shut down.
public enum ShutdownMode: String, Sendable {
    /// Finish running jobs (up to the drain deadline), then exit.
    case drain
    /// Stop running jobs and give them back to the queue (no result), then exit.
    case requeue
}

/// The worker: one owner thread holds the AMQP connection, takes jobs up to its slots,
/// hears cancels, and publishes each job's single terminal result (with a publisher
/// confirm) before acking the job. Jobs run on threads of their own under the supervisor.
///
/// The broker side and the jobs meet in two places only: each running job's
/// ``JobControl`` (an atomic stop flag), and the mailbox of ``FinishedJob``s.
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration
    let logger: Logger
    let validator: JobValidator
    let runner: JobRunner
    private let wakeup = AMQPWakeup()
    private let mailbox = Mutex<[FinishedJob]>([])
    private let shutdown = Mutex<ShutdownMode?>(nil)
    private let consuming = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)

    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "genworker")) {
        self.configuration = configuration
        self.logger = logger
        self.validator = JobValidator(configuration: configuration)
        self.runner = JobRunner(configuration: configuration)
    }

    /// True while connected and consuming jobs (`/readyz`).
    public var isConsuming: Bool { consuming.load(ordering: .acquiring) }

    /// Asks the worker to stop taking jobs and return from ``run()``. Safe from any thread.
    public func requestShutdown(_ mode: ShutdownMode = .drain) {
        shutdown.withLock { if $0 == nil { $0 = mode } }
        wakeup.signal()
    }

    var shutdownMode: ShutdownMode? { shutdown.withLock { $0 } }

    /// Runs until ``requestShutdown(_:)``: connects, reconnects with backoff after a loss.
    /// Blocking: call it on a thread of its own (the connection's owner thread).
    public func run() {
        var backoff = Duration.milliseconds(250)
        let session = Session(worker: self)
        while shutdownMode == nil {
            do {
                try session.run()
                backoff = .milliseconds(250)
            } catch {
                consuming.store(false, ordering: .releasing)
                logger.error("broker connection ended: \(error)")
                session.abandonRunningJobs()
                guard shutdownMode == nil else { break }
                logger.info("reconnecting in \(backoff)")
                sleep(upTo: backoff)
                backoff = min(backoff * 2, configuration.amqp.reconnectMax)
            }
        }
        consuming.store(false, ordering: .releasing)
        stopped.store(true, ordering: .releasing)
        logger.info("worker stopped")
    }

    /// Sleeps, but returns early on shutdown.
    private func sleep(upTo duration: Duration) {
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end, shutdownMode == nil {
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func post(_ finished: FinishedJob) {
        mailbox.withLock { $0.append(finished) }
        wakeup.signal()
    }

    func takeFinished() -> [FinishedJob] {
        mailbox.withLock { box in
            defer { box.removeAll() }
            return box
        }
    }

    func setConsuming(_ value: Bool) { consuming.store(value, ordering: .releasing) }

    /// The session's connection must use the worker's wakeup, so job threads can reach it.
    func connect() throws(AMQPError) -> AMQPConnection {
        var amqp = try AMQPConfiguration(url: configuration.amqp.url)
        amqp.connectionName = amqp.connectionName ?? "genworker \(configuration.worker.name)"
        return try AMQPConnection(configuration: amqp, wakeup: wakeup)
    }
}
