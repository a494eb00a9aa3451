import GenWorkerCore
import Logging
import Supervision
import Synchronization
import WakePipe

/// What a job's thread posts for the owner loop to publish.
struct JobUpdate: Sendable {
    enum Kind: Sendable {
        /// A `progress` event (published without a confirm; the next one supersedes it).
        case progress(JobEvent)
        /// The run ended: its terminal event, or nil when it must publish nothing (it lost
        /// its ownership, or the worker requeues it on shutdown).
        case finished(JobEvent?)
    }

    /// The run's number (``JobIntake``'s run id).
    let run: UInt64
    let kind: Kind
}

/// Everything other threads share with the owner loop, and nothing else: job updates in a
/// mailbox, the shutdown request, the "consuming" flag, and the wake pipe that makes the
/// owner look at them at once.
final class WorkerInbox: Sendable {
    let wake = WakePipe()
    private let updates = Mutex<[JobUpdate]>([])
    private let shutdown = Mutex<ShutdownMode?>(nil)
    private let consuming = Atomic<Bool>(false)
    private let quarantined = Atomic<Bool>(false)
    /// Beaten by the owner loop at every turn (`/healthz`).
    let pulse: LoopPulse

    init(pulse: LoopPulse) { self.pulse = pulse }

    func post(_ update: JobUpdate) {
        updates.withLock { $0.append(update) }
        wake.signal()
    }

    func take() -> [JobUpdate] {
        updates.withLock { box in
            defer { box.removeAll() }
            return box
        }
    }

    /// A drain can become a requeue (the drain deadline passed), not back.
    func requestShutdown(_ mode: ShutdownMode) {
        shutdown.withLock { if $0 == nil || mode == .requeue { $0 = mode } }
        wake.signal()
    }

    var shutdownMode: ShutdownMode? { shutdown.withLock { $0 } }

    var isConsuming: Bool { consuming.load(ordering: .acquiring) }

    func setConsuming(_ value: Bool) { consuming.store(value, ordering: .releasing) }

    var isQuarantined: Bool { quarantined.load(ordering: .acquiring) }

    func setQuarantined(_ value: Bool) { quarantined.store(value, ordering: .releasing) }
}

/// The worker: one owner thread holds the AMQP connection, takes jobs up to its slots,
/// hears cancels, and publishes each job's single terminal result (with a publisher
/// confirm) before acking the job. Jobs run on threads of their own under the supervisor.
/// docs/architecture.md follows one job through it.
///
/// This type is the handle other code holds; the work happens in ``OwnerLoop`` (the
/// owner thread's state and loop) and ``JobIntake`` (its decisions).
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration
    let logger: Logger
    let metrics = WorkerMetrics()
    let inbox: WorkerInbox
    let webhooks: (any WebhookSink)?

    /// `webhooks`: where jobs' events go for their webhooks (nil: jobs with one are refused).
    public init(configuration: WorkerConfiguration, logger: Logger = Logger(label: "genworker"), webhooks: (any WebhookSink)? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.webhooks = webhooks
        // The loop turns every second; a connect, a catch-up's batch or a send is bounded well
        // below a lease. At least a minute: a busy two-core machine is not a wedged one.
        inbox = WorkerInbox(pulse: LoopPulse(bound: .seconds(max(60, configuration.jobs.leaseSeconds))))
    }

    /// True while connected and consuming jobs.
    public var isConsuming: Bool { inbox.isConsuming }

    /// Why the worker takes no jobs now, nil when it does (`/readyz`): not connected, caught
    /// up not yet or draining (not consuming), or quarantined (it still consumes nothing, but
    /// an operator must see the difference).
    public var unready: String? {
        if inbox.isQuarantined { return "quarantined: jobs kept failing for this machine's sake; probing (worker.probe_command)" }
        return inbox.isConsuming ? nil : "not consuming"
    }

    /// How long the owner loop has not turned, past its bound (`/healthz` fails); nil while it turns.
    public var ownerLoopStalled: Duration? { inbox.pulse.stalled() }

    /// Asks the worker to stop taking jobs and return from ``run()``. Safe from any thread.
    /// A drain can be turned into a requeue later; not back.
    public func requestShutdown(_ mode: ShutdownMode = .drain) { inbox.requestShutdown(mode) }

    /// Runs until ``requestShutdown(_:)``: takes the worker's identity on this machine (or
    /// throws `identityInUse`), connects, reconnects with backoff after a loss.
    /// Blocking: the calling thread becomes the connection's owner thread.
    public func run() throws(GenWorkerError) {
        let gpus = try GPUInventory.assignment(configuration: configuration, logger: logger)
        let identity = try WorkerIdentityLock.acquire(configuration: configuration)
        defer { identity.release() }
        OwnerLoop(configuration: configuration, gpus: gpus, logger: logger, metrics: metrics, inbox: inbox, webhooks: webhooks).run()
    }
}
