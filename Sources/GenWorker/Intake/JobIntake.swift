/// The worker's decisions, as pure transitions: given what the worker knows (cancels heard,
/// jobs running and their slots, whether it is shutting down), each event in returns what
/// to do as a value. The owner loop carries decisions out and never decides itself; the
/// unit tests drive every transition without a broker. (The shape of swift-kafka-client's
/// `KafkaConsumer.StateMachine`.)
struct JobIntake: Sendable {
    typealias Instant = ContinuousClock.Instant

    /// What to do with a job message once its outcome is known.
    enum Disposition: Sendable, Equatable {
        /// Done with it: remove it from the queue.
        case ack
        /// Into the dead-letter queue, never back into the job queue.
        case deadLetter
        /// Back into the queue for any worker (shutdown, a refused result, no free slot).
        case requeue
    }

    /// What to do with a delivery.
    enum Decision: Sendable, Equatable {
        /// Run the job on `slot`.
        case run(JobRequest, slot: Int)
        /// Publish `event` (when there is one) with a confirm, then settle the message with
        /// `disposition`; if the broker refuses the event, requeue instead.
        case settle(JobEvent?, Disposition)
    }

    /// What a delivery says about itself.
    struct Delivery: Sendable {
        var tag: UInt64
        /// The job, or why it is not one.
        var validation: Result<JobRequest, JobRejection>
        /// Quorum queues count earlier deliveries that ended without an ack (`x-delivery-count`).
        var deliveryCount: Int?
        /// The submitter as the broker vouches for it (AMQP `user_id`).
        var submitter: String?
        var redelivered: Bool
    }

    /// A job this worker runs, as the decisions need it.
    struct Running: Sendable, Equatable {
        var id: String
        var task: WanTask
        var submitter: String?
        var slot: Int
    }

    /// What a cancel means here.
    struct CancelOutcome: Sendable, Equatable {
        /// Running jobs to stop (delivery tags).
        var stop: [UInt64] = []
        /// Running jobs of that id whose submitter is not the canceller (`cancel.authorize`).
        var refused: [UInt64] = []
    }

    let workerName: String
    let deliveryLimit: Int
    let authorize: Bool
    let admins: Set<String>
    private(set) var running: [UInt64: Running] = [:]
    private(set) var freeSlots: [Int]
    private(set) var shutdown: ShutdownMode?
    private var cancels: CancelLog

    init(configuration: WorkerConfiguration) {
        workerName = configuration.worker.name
        deliveryLimit = configuration.topology.deliveryLimit
        authorize = configuration.cancel.authorize
        admins = Set(configuration.cancel.admins)
        freeSlots = Array(0..<configuration.worker.slots)
        cancels = CancelLog(retention: .seconds(configuration.topology.cancelRetentionHours * 3600))
    }

    var busySlots: Int { running.count }

    /// A job message arrived.
    mutating func receive(_ delivery: Delivery, at now: Instant) -> Decision {
        let job: JobRequest
        switch delivery.validation {
        case .failure(let rejection):
            // Without a readable id there is nobody to tell: dead-letter only.
            guard let id = rejection.id else { return .settle(nil, .deadLetter) }
            var event = JobEvent(id: id, task: rejection.task, event: .failed, worker: workerName)
            event.reason = .invalidJob
            event.message = rejection.message
            event.redelivered = delivery.redelivered
            return .settle(event, .deadLetter)
        case .success(let valid):
            job = valid
        }
        // At the limit the job has killed workers or outlived consumer_timeout that often: it
        // gets a result and goes to the dead-letter queue instead of vanishing there silently.
        if let count = delivery.deliveryCount, count >= deliveryLimit {
            var event = JobEvent(id: job.id, task: job.task.rawValue, event: .failed, worker: workerName)
            event.reason = .deliveryLimit
            event.message =
                "delivered \(count + 1) times without finishing (the generator kills workers, or the job outlives the broker's consumer_timeout); not run again"
            event.redelivered = true
            return .settle(event, .deadLetter)
        }
        if cancels.contains(job.id, at: now, allowed: { mayCancel($0, submittedBy: delivery.submitter) }) {
            var event = JobEvent(id: job.id, task: job.task.rawValue, event: .cancelled, worker: workerName)
            event.reason = .cancelledBeforeStart
            event.message = "cancelled before it started"
            event.redelivered = delivery.redelivered
            return .settle(event, .ack)
        }
        // Shutting down (a delivery already in flight when the consumer was cancelled), or
        // more deliveries than slots: give it back untouched for another worker.
        guard shutdown == nil, !freeSlots.isEmpty, running[delivery.tag] == nil else { return .settle(nil, .requeue) }
        let slot = freeSlots.removeFirst()
        running[delivery.tag] = Running(id: job.id, task: job.task, submitter: delivery.submitter, slot: slot)
        return .run(job, slot: slot)
    }

    /// A cancel for `id` arrived from `user` (live, or replayed from the cancel stream).
    mutating func cancel(_ id: String, by user: String?, at now: Instant) -> CancelOutcome {
        cancels.insert(id, user: user, at: now)
        var outcome = CancelOutcome()
        for (tag, job) in running.sorted(by: { $0.key < $1.key }) where job.id == id {
            if mayCancel(user, submittedBy: job.submitter) { outcome.stop.append(tag) } else { outcome.refused.append(tag) }
        }
        return outcome
    }

    /// A run ended (with a result or without); its slot is free again. Returns what ran.
    mutating func finished(_ tag: UInt64) -> Running? {
        guard let job = running.removeValue(forKey: tag) else { return nil }
        freeSlots.append(job.slot)
        freeSlots.sort()
        return job
    }

    /// Asked to shut down (a drain can become a requeue, not back). Returns the running
    /// jobs to stop now: all of them for a requeue, none for a drain.
    mutating func beginShutdown(_ mode: ShutdownMode) -> [UInt64] {
        if shutdown == .requeue { return [] }
        shutdown = mode
        return mode == .requeue ? running.keys.sorted() : []
    }

    /// The connection was lost: the broker requeued every unacked job. Returns the runs to
    /// stop (each then ends through ``finished(_:)``).
    func connectionLost() -> [UInt64] { running.keys.sorted() }

    /// With `cancel.authorize`, only the submitter or an admin may cancel, as the broker vouches
    /// for them through `user_id` (RabbitMQ refuses a user_id that is not the connection's user).
    func mayCancel(_ user: String?, submittedBy submitter: String?) -> Bool {
        guard authorize else { return true }
        guard let user else { return false }
        return user == submitter || admins.contains(user)
    }
}
