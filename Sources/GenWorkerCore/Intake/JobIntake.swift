/// The worker's decisions, as pure transitions: given what the worker knows (its runs and
/// their slots, whether it is shutting down, and the ledger's view of a job), each event in
/// returns what to do as a value. The owner loop carries decisions out and never decides
/// itself; the unit tests drive every transition without a broker. (The shape of
/// swift-kafka-client's `KafkaConsumer.StateMachine`.)
///
/// A job's path: ``receive(_:)`` → `.claim` (a slot is held while the claim goes through
/// the ledger) → ``claimDecided(_:outcome:job:)`` → `.run` / `.answer` / `.end` →
/// ``finished(_:)``.
package struct JobIntake: Sendable {
    /// What to do with a job message that will not be claimed.
    package enum Disposition: Sendable, Equatable {
        /// Into the dead-letter queue, never back into the job queue.
        case deadLetter
        /// Back into the queue for any worker (shutdown, a refused result, no free slot).
        case requeue
    }

    /// What to do with a delivery.
    package enum Decision: Sendable, Equatable {
        /// Write a claim for `job` to the ledger, holding `slot` (run `run`) until it is decided.
        case claim(run: UInt64, JobRequest, slot: Int)
        /// Settle the message with `disposition`; `event` (an invalid job's rejection) is
        /// written to the ledger first and published only if it is the id's first result.
        case settle(JobEvent?, Disposition)
    }

    /// What to do once the ledger has decided a claim. The delivery is acked at once (from
    /// here on the ledger, not the queue, holds the job), except an ``answer`` to a `reply_to`:
    /// that delivery is acked once the broker took the answer.
    package enum ClaimDecision: Sendable, Equatable {
        /// Run attempt `attempt` on the held slot.
        case run(attempt: Int)
        /// Another worker runs it; this delivery's `reply_to` is attached to it.
        case attached
        /// The job has its result already: send it to this delivery's `reply_to`.
        case answer(JobEvent)
        /// End the won attempt at once with `event` (cancelled before start, delivery limit).
        case end(JobEvent, attempt: Int)
        /// Shutting down: give the won attempt back at once (a release), unstarted.
        case giveBack(attempt: Int)
    }

    /// What a delivery says about itself.
    package struct Delivery: Sendable {
        /// The job, or why it is not one.
        package var validation: Result<JobRequest, JobRejection>
        /// The submitter as the broker vouches for it (AMQP `user_id`).
        package var submitter: String?
        package var redelivered: Bool
    }

    /// A job this worker holds a slot for: claiming it, or running it.
    package struct Running: Sendable, Equatable {
        package var id: String
        package var task: WanTask
        package var submitter: String?
        package var slot: Int
        /// False while the claim is in the ledger's hands.
        package var started = false
    }

    /// What a cancel means here.
    package struct CancelOutcome: Sendable, Equatable {
        /// Running jobs to stop (run ids).
        package var stop: [UInt64] = []
        /// Running jobs of that id whose submitter is not the canceller (`cancel.authorize`).
        package var refused: [UInt64] = []
    }

    package let workerName: String
    package let deliveryLimit: Int
    package let authorize: Bool
    package let admins: Set<String>
    package private(set) var running: [UInt64: Running] = [:]
    package private(set) var freeSlots: [Int]
    package private(set) var shutdown: ShutdownMode?
    private var nextRun: UInt64 = 1

    package init(configuration: WorkerConfiguration) {
        workerName = configuration.worker.name
        deliveryLimit = configuration.topology.deliveryLimit
        authorize = configuration.cancel.authorize
        admins = Set(configuration.cancel.admins)
        freeSlots = Array(0..<configuration.worker.slots)
    }

    package var busySlots: Int { running.count }

    /// No new jobs for now (the outputs disk is below `outputs.min_free_mb`): deliveries go back.
    package var paused = false

    /// A job message arrived.
    package mutating func receive(_ delivery: Delivery) -> Decision {
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
        // The broker's `x-delivery-count` is not read: RabbitMQ 3.x counts every return in it
        // (a delivery bounced while slots were full, one returned by a dropped connection), so
        // it counts no attempt. The ledger counts the real ones (expiries), in `claimDecided`.
        // Shutting down (a delivery already in flight when the consumer was cancelled), or
        // more deliveries than slots: give it back untouched for another worker.
        guard shutdown == nil, !paused, !freeSlots.isEmpty else { return .settle(nil, .requeue) }
        let slot = freeSlots.removeFirst()
        let run = nextRun
        nextRun += 1
        running[run] = Running(id: job.id, task: job.task, submitter: delivery.submitter, slot: slot)
        return .claim(run: run, job, slot: slot)
    }

    /// The ledger decided the claim of `run`; `job` is the ledger's view of the job then.
    package mutating func claimDecided(_ run: UInt64, outcome: LedgerState.ClaimOutcome, job: LedgerState.Job?) -> ClaimDecision {
        guard running[run] != nil else { return .attached }
        switch outcome {
        case .ended(let result):
            _ = finished(run)
            return .answer(result)
        case .attached:
            _ = finished(run)
            return .attached
        case .won(let attempt):
            // A requeued job's message carries the worker's user, not the submitter's: the
            // ledger remembers who submitted it first, and that is who may cancel it.
            if let submitter = job?.submitter { running[run]?.submitter = submitter }
            let held = running[run]!
            if let job, job.isCancelled(allowed: { mayCancel($0, submittedBy: held.submitter) }) {
                var event = JobEvent(id: held.id, task: held.task.rawValue, event: .cancelled, worker: workerName)
                event.reason = .cancelledBeforeStart
                event.message = "cancelled before it started"
                _ = finished(run)
                return .end(event, attempt: attempt)
            }
            // Attempts that ended with their worker gone: the job kills workers, or they die under it.
            // Excused expiries (the owner was cut off, not killed) count again past the limit:
            // a job that cuts every owner off must not be tried for ever.
            let counted = job.map { $0.expiries + max(0, $0.excused - deliveryLimit) } ?? 0
            if counted >= deliveryLimit {
                _ = finished(run)
                return .end(deliveryLimitEvent(id: held.id, task: held.task, times: counted), attempt: attempt)
            }
            // A claim decided after SIGTERM: start nothing new; the job goes back at once.
            if shutdown != nil {
                _ = finished(run)
                return .giveBack(attempt: attempt)
            }
            running[run]?.started = true
            return .run(attempt: attempt)
        }
    }

    private func deliveryLimitEvent(id: String, task: WanTask, times: Int) -> JobEvent {
        var event = JobEvent(id: id, task: task.rawValue, event: .failed, worker: workerName)
        event.reason = .deliveryLimit
        event.message =
            "tried \(times) times without finishing (the generator kills workers, or its workers keep dying); not run again"
        event.redelivered = true
        return event
    }

    /// A cancel for `id` arrived from `user` (live, or replayed from the ledger).
    package func cancel(_ id: String, by user: String?) -> CancelOutcome {
        var outcome = CancelOutcome()
        for (run, job) in running.sorted(by: { $0.key < $1.key }) where job.id == id && job.started {
            if mayCancel(user, submittedBy: job.submitter) { outcome.stop.append(run) } else { outcome.refused.append(run) }
        }
        return outcome
    }

    /// A run ended (with a result or without), or a claim was dropped; its slot is free again.
    package mutating func finished(_ run: UInt64) -> Running? {
        guard let job = running.removeValue(forKey: run) else { return nil }
        freeSlots.append(job.slot)
        freeSlots.sort()
        return job
    }

    /// Asked to shut down (a drain can become a requeue, not back). Returns the running
    /// jobs to stop now: all of them for a requeue, none for a drain.
    package mutating func beginShutdown(_ mode: ShutdownMode) -> [UInt64] {
        if shutdown == .requeue { return [] }
        shutdown = mode
        return mode == .requeue ? running.filter(\.value.started).keys.sorted() : []
    }

    /// The connection was lost: the broker requeued the deliveries whose claims were not
    /// decided yet. Their slots are free again; runs go on (the ledger, not the connection,
    /// makes them ours). Returns the dropped claims.
    package mutating func connectionLost() -> [UInt64] {
        let dropped = running.filter { !$0.value.started }.keys.sorted()
        for run in dropped { _ = finished(run) }
        return dropped
    }

    /// With `cancel.authorize`, only the submitter or an admin may cancel, as the broker vouches
    /// for them through `user_id` (RabbitMQ refuses a user_id that is not the connection's user).
    package func mayCancel(_ user: String?, submittedBy submitter: String?) -> Bool {
        guard authorize else { return true }
        guard let user else { return false }
        return user == submitter || admins.contains(user)
    }
}
