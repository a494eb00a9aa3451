import AMQP
import Foundation
import Logging
import Synchronization

/// What a job's thread posts for the connection's owner to publish.
struct JobUpdate: Sendable {
    enum Kind: Sendable {
        /// A `progress` event (published without a confirm; the next one supersedes it).
        case progress(JobEvent)
        /// The run ended: its terminal event, or nil when it must publish nothing (its
        /// delivery was lost, or the worker requeues it on shutdown).
        case finished(JobEvent?)
    }

    let deliveryTag: UInt64
    let kind: Kind
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
/// ``JobControl`` (an atomic stop flag), and the mailbox of ``JobUpdate``s.
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration
    let logger: Logger
    let validator: JobValidator
    let runner: JobRunner
    let metrics: WorkerMetrics
    private let wakeup = AMQPWakeup()
    private let mailbox = Mutex<[JobUpdate]>([])
    private let shutdown = Mutex<ShutdownMode?>(nil)
    private let consuming = Atomic<Bool>(false)

    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "genworker")) {
        self.configuration = configuration
        self.logger = logger
        self.validator = JobValidator(configuration: configuration)
        self.runner = JobRunner(configuration: configuration)
        self.metrics = WorkerMetrics()
    }

    /// True while connected and consuming jobs (`/readyz`).
    public var isConsuming: Bool { consuming.load(ordering: .acquiring) }

    /// Asks the worker to stop taking jobs and return from ``run()``. Safe from any thread.
    /// A drain can be turned into a requeue later (the drain deadline passed); not back.
    public func requestShutdown(_ mode: ShutdownMode = .drain) {
        shutdown.withLock { if $0 == nil || mode == .requeue { $0 = mode } }
        wakeup.signal()
    }

    var shutdownMode: ShutdownMode? { shutdown.withLock { $0 } }

    /// Runs until ``requestShutdown(_:)``: connects, reconnects with backoff after a loss.
    /// Blocking: call it on a thread of its own (the connection's owner thread).
    public func run() {
        // Descendants that leave their session stay ours to find, kill and reap.
        if !ProcessTree.becomeSubreaper() { logger.warning("cannot become child subreaper (prctl); orphaned generator processes go to init") }
        let owner = "GENWORKER_OWNER=\(configuration.ownerToken)"
        let leftovers = ProcessTree.processes(withEnvironment: owner).count
        if leftovers > 0 {
            logger.warning("killing \(leftovers) generator process(es) left by an earlier life of this worker")
            ProcessTree.killAll(environment: owner, timeout: .seconds(5))
        }
        var watchdog: Watchdog?
        switch Watchdog.start(path: configuration.supervisor.watchdogPath ?? Watchdog.defaultPath, ownerToken: configuration.ownerToken) {
        case .success(let started): watchdog = started
        case .failure(let error): logger.warning("no watchdog (\(error.message)): if this worker is killed, its generators may outlive it")
        }
        defer { watchdog?.stop() }
        var backoff = Duration.milliseconds(250)
        let session = Session(worker: self)
        while shutdownMode == nil {
            do {
                try session.run()
                backoff = .milliseconds(250)
            } catch {
                setConsuming(false)
                logger.error("broker connection ended: \(error)")
                session.abandonRunningJobs()
                guard shutdownMode == nil else { break }
                logger.info("reconnecting in \(backoff)")
                sleep(upTo: backoff)
                backoff = min(backoff * 2, configuration.amqp.reconnectMax)
            }
        }
        consuming.store(false, ordering: .releasing)
        logger.info("worker stopped")
    }

    /// Sleeps, but returns early on shutdown.
    private func sleep(upTo duration: Duration) {
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end, shutdownMode == nil {
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    func post(_ update: JobUpdate) {
        mailbox.withLock { $0.append(update) }
        wakeup.signal()
    }

    func takeUpdates() -> [JobUpdate] {
        mailbox.withLock { box in
            defer { box.removeAll() }
            return box
        }
    }

    func setConsuming(_ value: Bool) {
        consuming.store(value, ordering: .releasing)
        metrics.connected(value)
    }

    /// The session's connection must use the worker's wakeup, so job threads can reach it.
    func connect() throws(AMQPError) -> AMQPConnection {
        var amqp = try AMQPConfiguration(url: configuration.amqp.url)
        amqp.connectionName = amqp.connectionName ?? "genworker \(configuration.worker.name)"
        return try AMQPConnection(configuration: amqp, wakeup: wakeup)
    }
}
