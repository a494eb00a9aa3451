import Foundation
import Logging

/// Every decision the worker makes, as pure transitions (the shape of swift-kafka-client's
/// `KafkaConsumer.StateMachine`): the owner loop reports what happened — a delivery, a ledger
/// entry, a run's progress or end, a connection lost or caught up, the results' confirms, the
/// passing of time — and carries out the ``Action``s returned, in order. Nothing here touches
/// the broker, a process, a file or a clock: time comes in as ``Now``. So the orders a real
/// fleet can produce (duplicates, late records, skewed clocks, lost writes, a restart under the
/// same name) are unit-tested without a broker (`WorkerStateMachineTests`).
///
/// What it owns: the intake (slots, ``JobIntake``), the folded ledger (``LedgerState``), the
/// runs and their renewals (the fence), pending claims, ends and rejections, records written
/// but not seen back (rewritten until they are), expiry proposals, the results outbox, the
/// heartbeat timer, and shutdown.
package struct WorkerStateMachine {
    /// The moment of an event, on the three clocks the worker uses: monotonic (timers, the
    /// fence), steady as a date (the ledger fold, expiries: never jumps), and the wall clock
    /// (what records say for people).
    package struct Now: Sendable {
        package var monotonic: ContinuousClock.Instant
        package var steady: Date
        package var wall: Date

        package init(monotonic: ContinuousClock.Instant, steady: Date, wall: Date) {
            self.monotonic = monotonic
            self.steady = steady
            self.wall = wall
        }
    }

    package struct Settings: Sendable {
        package var worker: String
        package var slots: Int
        package var lease: Duration
        /// An owner whose renewals stopped coming back stops its run this long after the last
        /// one: 0.9 × lease − grace, so the process tree is gone before anyone may expire it.
        package var fenceAfter: Duration
        package var renewEvery: Duration
        /// A record not seen back in the ledger after this long is written again.
        package var rewriteAfter: Duration = .seconds(5)
        /// A run older than this writes its claim again (`carry`): half the ledger window.
        package var carryEvery: Duration
        package var drainTimeout: Duration
        /// Past the runs' end, how long a shutdown waits for the broker to take what is pending.
        package var shutdownPatience: Duration
        package var warm: Bool
        /// `worker.quarantine_after` (0: never).
        package var quarantineAfter = 0
        /// `jobs.machine_fault_retries`.
        package var machineFaultRetries = 0
        /// After giving a job back for a machine fault, how long past its requeue the worker
        /// takes no job (`worker.probe_every_s`, at most a minute: every slot waits): the job is
        /// for another worker, and this one would be first in line for it (its slot freed up).
        package var holdOff: Duration = .seconds(60)
        /// This process's life, in its heartbeats (see ``LedgerRecord/life``).
        package var life = UUID().uuidString

        package init(configuration: WorkerConfiguration) {
            worker = configuration.worker.name
            slots = configuration.worker.slots
            lease = .seconds(configuration.jobs.leaseSeconds)
            fenceAfter = .seconds(configuration.jobs.leaseSeconds * 0.9 - configuration.supervisor.graceSeconds)
            renewEvery = .seconds(configuration.jobs.leaseSeconds / 4)
            carryEvery = .seconds(configuration.topology.ledgerRetention / 2)
            drainTimeout = configuration.shutdown.drainTimeout
            shutdownPatience = configuration.supervisor.grace * 2 + .seconds(10)
            warm = configuration.wan.warm
            quarantineAfter = configuration.worker.quarantineAfter
            machineFaultRetries = configuration.jobs.machineFaultRetries
            holdOff = .seconds(min(configuration.worker.probeEverySeconds, 60))
        }

        /// How much longer than a lease this worker waits before it requeues a job whose
        /// requeue another worker owed and never sent (``LedgerState/unrequeued(at:grace:)``):
        /// up to half a lease, fixed by the worker's name, so that one of the fleet goes first
        /// and the others see its requeue in the ledger instead of each sending a copy.
        package var requeueStagger: Duration {
            let hash = worker.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
            return lease * (Double(hash % 1000) / 2000)
        }
    }

    /// A delivery from the jobs queue, as the owner loop read it.
    package struct Incoming: Sendable {
        package var tag: UInt64
        package var validation: Result<JobRequest, JobRejection>
        /// The body as delivered (kept in the claim, so an expiry can requeue it).
        package var body: String
        package var submitter: String?
        package var redelivered: Bool
        package var replyTo: String?
        package var correlationID: String?
        /// The publisher's `timestamp` (seconds), for the queue-wait metric.
        package var sentAt: Double?
        /// Set for a worker's requeue (its headers), nil for a submission.
        package var requeue: RequeueMark?

        package init(
            tag: UInt64, validation: Result<JobRequest, JobRejection>, body: String, submitter: String?, redelivered: Bool, replyTo: String?,
            correlationID: String?, sentAt: Double?, requeue: RequeueMark? = nil
        ) {
            self.tag = tag
            self.validation = validation
            self.body = body
            self.submitter = submitter
            self.redelivered = redelivered
            self.replyTo = replyTo
            self.correlationID = correlationID
            self.sentAt = sentAt
            self.requeue = requeue
        }

        /// Whether this is a worker's requeue: its `reply_to` is the job's own, so a second copy
        /// of it is answered nowhere.
        package var requeued: Bool { requeue != nil }
    }

    /// What a requeued job message says of the job (headers `x-genworker-attempt`,
    /// `x-genworker-expiries`): the attempt it follows and the expiries counted so far.
    package struct RequeueMark: Sendable {
        package var after: Int?
        package var expiries: Int?
        /// `x-genworker-machine-faults`: the machine-fault releases so far.
        package var machineFaults: Int?

        package init(after: Int?, expiries: Int?, machineFaults: Int? = nil) {
            self.after = after
            self.expiries = expiries
            self.machineFaults = machineFaults
        }
    }

    /// A run to start on its own thread.
    package struct RunStart: Sendable, Equatable {
        package var run: UInt64
        package var job: JobRequest
        package var attempt: Int
        package var slot: Int
        package var redelivered: Bool
        /// The `started` event to publish once the run exists.
        package var started: JobEvent
    }

    /// One result for one destination, waiting for the broker's confirm.
    package struct Outgoing: Sendable, Equatable {
        package var event: JobEvent
        package var destination: BrokerDestination
        package var notBefore: ContinuousClock.Instant
        /// The delivery this publish answers, settled only once the broker took the answer (or
        /// refused it): a worker killed before then leaves the submission in the queue, and
        /// whoever takes it next answers it. Dropped with the connection, like the delivery.
        package var answers: Answered? = nil
    }

    /// How an answered delivery is settled: acked (a duplicate of a job that ended), or
    /// dead-lettered (an invalid job).
    package struct Answered: Sendable, Equatable {
        package var deliveryTag: UInt64
        package var deadLetter: Bool

        package var settle: Action { deadLetter ? .settle(deliveryTag: deliveryTag, requeue: false) : .ack(deliveryTag: deliveryTag) }
    }

    package enum Metric: Sendable, Equatable {
        case slots(busy: Int, total: Int)
        case jobFinished(JobEvent)
        case jobRan(task: String, seconds: Double)
        case queueWait(task: String, seconds: Double)
        case cancelLatency(seconds: Double)
        case cancelIgnored(reason: String)
        case ledgerLag(seconds: Double)
        case ledgerRecordIgnored
        case quarantined(Bool)
    }

    package enum Action: Sendable, Equatable {
        /// Append a record to the ledger (no confirm: it counts when it comes back).
        case write(LedgerRecord)
        case ack(deliveryTag: UInt64)
        /// Settle a delivery that is not claimed: dead-letter it, or give it back.
        case settle(deliveryTag: UInt64, requeue: Bool)
        case start(RunStart)
        /// Set the run's stop flag (its supervisor stops the whole process tree).
        case stop(run: UInt64, StopRequest)
        /// A non-terminal event (`started`, `progress`), without a confirm.
        case publishEvent(JobEvent)
        /// Publish with confirms; report the outcome with ``resultsPublished(_:accepted:now:)``.
        case publishResults([Outgoing])
        /// Republish a job from the ledger after a valid expiry or release this worker wrote.
        case requeue(Requeue)
        /// Move the attempt's video to the job's final path: its end is the job's result.
        case promote(id: String, attempt: Int)
        /// Remove the attempt's run directory: its end did not count.
        case discardRun(id: String, attempt: Int)
        case consume(Bool)
        /// The watchdog's deadline (nil: none): the oldest renewal of a live run plus 0.95 lease.
        case armWatchdog(ContinuousClock.Instant?)
        case log(Logger.Level, String, job: String?)
        case metric(Metric)
    }

    /// A job this worker runs.
    package struct Run: Sendable, Equatable {
        package var job: JobRequest
        package var attempt: Int
        /// When the last renewal of this run that came back through the ledger was written.
        package var renewedAt: ContinuousClock.Instant
        package var progress: JobEvent?
        /// The ledger gave the job to someone else, or the fence stopped it: publish nothing.
        package var lost = false
        /// The claim as written, and when it last went into the ledger (`carry`).
        package var claim: LedgerRecord
        package var carriedAt: ContinuousClock.Instant
        /// The stop asked of it, if any (the first one wins, as in ``JobControl``).
        package var stopping: StopRequest?
        /// The slot (and so the GPUs) it runs on: quarantine counts faults per slot.
        package var slot = 0
    }

    private struct PendingClaim: Sendable {
        var record: LedgerRecord
        var run: UInt64
        var job: JobRequest
        var slot: Int
        var incoming: Incoming
        var writtenAt: ContinuousClock.Instant
    }

    private struct PendingRejection: Sendable {
        /// nil once the connection that delivered it is gone (the broker redelivers it).
        var deliveryTag: UInt64?
        var event: JobEvent
        var reply: LedgerState.Reply?
    }

    package let settings: Settings
    package private(set) var intake: JobIntake
    package private(set) var ledger: LedgerState
    package private(set) var runs: [UInt64: Run] = [:]
    private var claims: [String: PendingClaim] = [:]
    /// Results written to the ledger, by ref, until they come back (kept across reconnects).
    private var ends: [String: (event: JobEvent, attempt: Int)] = [:]
    private var rejections: [String: PendingRejection] = [:]
    /// Records this worker wrote that have not come back through the ledger yet, by ref. A
    /// stream publish without confirms can vanish (a node restarting, a leader moving), so each
    /// is written again every `rewriteAfter` until it is seen; the fold ignores a second copy.
    package private(set) var unseen: [String: (record: LedgerRecord, writtenAt: ContinuousClock.Instant)] = [:]
    /// Results the ledger accepted, one entry per destination, until the broker confirms each.
    package private(set) var outbox: [Outgoing] = []
    /// Publishes handed out and not reported back yet.
    private var publishing = false
    /// Refs of expiries and releases this worker wrote: a valid one obliges it to requeue the job.
    private var requeueRefs: Set<String> = []
    /// Jobs this worker must put back into the queue (its expiry or release counted), until
    /// the broker confirms each: a requeue lost with the connection is sent again.
    package private(set) var requeues: [(requeue: Requeue, notBefore: ContinuousClock.Instant, sent: Bool)] = []
    /// The outputs disk is below `outputs.min_free_mb` (no jobs taken).
    private var outputsLow = false
    /// Per slot, failures in a row that blame the machine; past `worker.quarantine_after`,
    /// `quarantined`. Per slot: one dead GPU must not hide behind its neighbours' completions.
    private var machineFaults: [Int: Int] = [:]
    /// Taking no jobs until the probe passes (``probed(healthy:)``); in heartbeats and `/readyz`.
    package private(set) var quarantined = false
    /// Expiries already proposed, as `id#attempt#counter`.
    private var proposedExpiries: Set<String> = []
    /// Requeues sent in another worker's stead, as `id#attempt` (once each per process life).
    private var repairedRequeues: Set<String> = []
    private var heartbeats: [String: (writtenAt: ContinuousClock.Instant, runs: [UInt64])] = [:]
    private var heartbeatCounter = 0
    private var nextHeartbeat: ContinuousClock.Instant?
    private var nextExpiryScan: ContinuousClock.Instant?
    /// True once this connection's catch-up marker came back: only then may the worker expire
    /// other workers' jobs, and take jobs.
    package private(set) var caughtUp = false
    private var marker: String?
    package private(set) var lastLedgerEntry: ContinuousClock.Instant?
    /// The first catch-up of this process: afterwards, attempts an earlier life of this worker
    /// left running are expired at once (the identity lock proves that life is over).
    private var firstCatchUp = true
    package private(set) var consuming = false
    private var connected = false
    private var connectedAt: ContinuousClock.Instant?
    private var node: String?
    package private(set) var shutdown: ShutdownMode?
    private var drainDeadline: ContinuousClock.Instant?
    private var giveUpAt: ContinuousClock.Instant?

    package init(settings: Settings, intake: JobIntake, retention: TimeInterval) {
        self.settings = settings
        self.intake = intake
        ledger = LedgerState(retention: retention, detail: .decisions)
    }

    package init(configuration: WorkerConfiguration) {
        self.init(
            settings: Settings(configuration: configuration), intake: JobIntake(configuration: configuration),
            retention: configuration.topology.ledgerRetention)
    }

    // MARK: - The connection

    /// Connected to `node`: follow the ledger and write a marker; caught up when it comes back.
    package mutating func connected(node: String, now: Now) -> [Action] {
        connected = true
        connectedAt = now.monotonic
        self.node = node
        caughtUp = false
        lastLedgerEntry = now.monotonic
        unseen = unseen.filter { $0.value.record.kind != .marker }
        let record = LedgerRecord(kind: .marker, worker: settings.worker, at: now.wall)
        marker = record.ref
        return write(record, now: now)
    }

    /// Whether the ledger has delivered nothing for `limit` while this connection catches up.
    package func catchUpStalled(now: Now, limit: Duration) -> Bool {
        !caughtUp && now.monotonic - (lastLedgerEntry ?? now.monotonic) >= limit
    }

    /// The marker came back: write what did not get through before, renew, take jobs.
    package mutating func caughtUpActions(now: Now) -> [Action] {
        var actions: [Action] = []
        // What did not get through before this connection (results, releases, expiries).
        for (ref, pending) in unseen.sorted(by: { $0.value.writtenAt < $1.value.writtenAt })
        where pending.writtenAt < (connectedAt ?? now.monotonic) {
            actions.append(.write(pending.record))
            unseen[ref]?.writtenAt = now.monotonic
        }
        // Renew before anything that may wait on the broker (the results' confirms).
        actions += writeHeartbeat(now: now)
        if firstCatchUp {
            firstCatchUp = false
            actions += endEarlierLife(now: now)
        }
        return actions + balanceIntake() + sendRequeues(now: now)
    }

    /// The connection ended: the broker took back the deliveries of undecided claims and
    /// rejections; their slots are free again. Runs go on.
    package mutating func connectionLost() -> [Action] {
        connected = false
        caughtUp = false
        consuming = false
        publishing = false
        for index in requeues.indices { requeues[index].sent = false }
        let dropped = Set(intake.connectionLost())
        for (ref, claim) in claims where dropped.contains(claim.run) {
            claims[ref] = nil
            unseen[ref] = nil
        }
        // Answers whose deliveries the broker takes back: the redelivered copies are answered.
        outbox.removeAll { $0.answers != nil }
        // A rejection's end may already be in the stream: keep it (it is written again until
        // seen), without its delivery, which the broker gives back. Whichever of it and the
        // redelivered copy counts first publishes the result; see `endDecided`.
        for ref in rejections.keys { rejections[ref]?.deliveryTag = nil }
        var actions: [Action] = [.metric(.slots(busy: intake.busySlots, total: settings.slots))]
        if !runs.isEmpty { actions.append(.log(.warning, "\(runs.count) job(s) keep running; their results wait for the broker", job: nil)) }
        return actions
    }

    // MARK: - Deliveries

    package mutating func receive(_ incoming: Incoming, now: Now) -> [Action] {
        let facts = JobIntake.Delivery(validation: incoming.validation, submitter: incoming.submitter, redelivered: incoming.redelivered)
        var actions: [Action] = []
        if case .failure(let rejection) = incoming.validation {
            actions.append(.log(.warning, "invalid job: \(rejection.message)", job: rejection.id ?? "-"))
        }
        switch intake.receive(facts) {
        case .settle(let event, let disposition):
            guard let event else { return actions + [.settle(deliveryTag: incoming.tag, requeue: disposition == .requeue)] }
            // Into the ledger first (attempt 0: it never ran); published once it comes back.
            var record = LedgerRecord(kind: .end, worker: settings.worker, at: now.wall, id: event.id, attempt: 0)
            record.result = event
            // A requeue's reply_to is the job's own: it hears the job's result, not this copy's rejection.
            let reply =
                incoming.requeued
                ? nil : incoming.replyTo.flatMap { $0.isEmpty ? nil : LedgerState.Reply(replyTo: $0, correlationID: incoming.correlationID) }
            rejections[record.ref] = PendingRejection(deliveryTag: incoming.tag, event: event, reply: reply)
            return actions + write(record, now: now)
        case .claim(let run, let job, let slot):
            var record = LedgerRecord(kind: .claim, worker: settings.worker, at: now.wall, id: job.id)
            record.job = incoming.body
            record.task = job.task.rawValue
            record.replyTo = incoming.replyTo
            record.correlationID = incoming.correlationID
            record.submitter = incoming.submitter
            record.requeuedAfter = incoming.requeue?.after
            record.expiries = incoming.requeue?.expiries
            // What the message says or what this fold counted, the larger: a copy without the
            // header must not hide the count from readers whose window starts later.
            let faults = max(incoming.requeue?.machineFaults ?? 0, ledger.jobs[job.id]?.machineFaults ?? 0)
            record.machineFaults = faults > 0 ? faults : nil
            claims[record.ref] = PendingClaim(record: record, run: run, job: job, slot: slot, incoming: incoming, writtenAt: now.monotonic)
            actions += write(record, now: now)
            actions += balanceIntake()
            return actions + [.metric(.slots(busy: intake.busySlots, total: settings.slots))]
        }
    }

    // MARK: - The ledger

    /// Folds one ledger entry and returns what it means here. `requestedBy`: the person a
    /// dashboard's cancel names (`x-genworker-requested-by`).
    package mutating func fold(_ entry: LedgerEntry, requestedBy: String? = nil, now: Now) -> [Action] {
        lastLedgerEntry = now.monotonic
        var actions: [Action] = []
        if case .forged(let record, let user) = entry {
            actions.append(
                .log(
                    .warning,
                    "ignored a ledger \(record.kind.rawValue) record that broker user '\(user ?? "-")' wrote in the name of \(record.worker) (not in topology.ledger_writers)",
                    job: record.id ?? "-"))
            actions.append(.metric(.ledgerRecordIgnored))
        }
        let effects = ledger.apply(entry, at: now.steady, live: caughtUp)
        if case .record(let record) = entry, record.worker == settings.worker { unseen[record.ref] = nil }
        for effect in effects {
            if case .marker(let ref) = effect, ref == marker, !caughtUp {
                caughtUp = true
                actions += caughtUpActions(now: now)
            }
            actions += act(on: effect, requestedBy: requestedBy, now: now)
        }
        return actions
    }

    private mutating func act(on effect: LedgerEffect, requestedBy: String?, now: Now) -> [Action] {
        let me = settings.worker
        switch effect {
        case .claimDecided(let ref, let id, let outcome):
            guard let claim = claims.removeValue(forKey: ref) else { return [] }
            let decision = intake.claimDecided(claim.run, outcome: outcome, job: ledger.jobs[id])
            let replyTo = claim.incoming.replyTo.flatMap {
                $0.isEmpty ? nil : LedgerState.Reply(replyTo: $0, correlationID: claim.incoming.correlationID)
            }
            // The ack first: from here on the ledger, not the queue, holds the job. Except for
            // an answer, which only the delivery holds until the broker has it.
            var actions: [Action] = []
            let answerTo = claim.incoming.requeued ? nil : replyTo
            if case .answer = decision, answerTo != nil {} else { actions.append(.ack(deliveryTag: claim.incoming.tag)) }
            switch decision {
            case .run(let attempt) where quarantined:
                // Claimed before the quarantine began, decided after: run nothing on a machine
                // that fails jobs; the job goes back at once, not counted as an attempt.
                _ = intake.finished(claim.run)
                actions.append(.log(.warning, "quarantined: giving the job back unstarted", job: id))
                actions += release(id, attempt: attempt, now: now)
            case .run(let attempt):
                actions += start(claim, attempt: attempt, now: now)
            case .giveBack(let attempt):
                actions.append(.log(.info, "shutting down: giving the job back unstarted", job: id))
                actions += release(id, attempt: attempt, now: now)
            case .attached:
                actions.append(.log(.info, "already running elsewhere: this submission's reply_to gets the result", job: id))
            case .answer(let result):
                // Only to this submission's reply_to: the results queue and the events exchange
                // had the job's one result when it ended.
                if claim.incoming.requeued {
                    actions.append(.log(.info, "a second copy of a requeue, and the job has ended: nothing to answer", job: id))
                } else {
                    actions.append(.log(.info, "already ended: answering the reply_to with the recorded result", job: id))
                }
                if let replyTo = answerTo {
                    outbox.append(
                        Outgoing(
                            event: result, destination: .reply(replyTo), notBefore: now.monotonic,
                            answers: Answered(deliveryTag: claim.incoming.tag, deadLetter: false)))
                }
            case .end(let event, let attempt):
                actions.append(Self.outcomeLine(event))
                actions += writeEnd(event, attempt: attempt, now: now)
            }
            return actions + balanceIntake() + [.metric(.slots(busy: intake.busySlots, total: settings.slots))] + flush(now: now)
        case .heartbeat(let ref, let worker) where worker == me:
            guard let heartbeat = heartbeats.removeValue(forKey: ref) else { return [] }
            for run in heartbeat.runs where runs[run] != nil {
                runs[run]!.renewedAt = max(runs[run]!.renewedAt, heartbeat.writtenAt)
            }
            return [.metric(.ledgerLag(seconds: (now.monotonic - heartbeat.writtenAt).inSeconds)), watchdogDeadline()]
        case .expiryDecided(let ref, let id, let valid, let requeue):
            guard requeueRefs.remove(ref) != nil else { return [] }
            guard valid, let requeue else {
                // A give-back that did not count (another worker's expiry came first): that
                // worker requeues it; nothing to wait for here.
                if faultRequeues.remove(id) != nil { updatePause() }
                return []
            }
            requeues.append((requeue, now.monotonic, false))
            return [.log(.warning, "requeueing the job whose worker stopped renewing it (or released it)", job: id)] + sendRequeues(now: now)
        case .endDecided(let ref, let id, let counted, let replies):
            if let rejection = rejections.removeValue(forKey: ref) {
                // An invalid job: its rejection is the id's result only if it had none; the
                // submission's own reply_to hears why its message was refused either way.
                var actions: [Action] = []
                if counted { actions += enqueueResult(rejection.event, replies: [], now: now) }
                guard let tag = rejection.deliveryTag else {
                    // Its delivery went back with a lost connection: the redelivered copy
                    // answers the reply_to (and settles); this one only gave the id its result.
                    return actions + flush(now: now)
                }
                let answered = Answered(deliveryTag: tag, deadLetter: true)
                if let reply = rejection.reply {
                    outbox.append(Outgoing(event: rejection.event, destination: .reply(reply), notBefore: now.monotonic, answers: answered))
                } else {
                    actions.append(answered.settle)
                }
                return actions + flush(now: now)
            }
            guard let (event, attempt) = ends.removeValue(forKey: ref) else { return [] }
            guard counted else {
                return [
                    .discardRun(id: id, attempt: attempt),
                    .log(.warning, "result not published: the ledger gave the job to another attempt, or it had ended", job: id),
                ]
            }
            // Only now does the video take the job's name: a run that lost never touches it.
            // A result names a local video when it stays on disk: a completed job without an
            // object store (or with `outputs.keep_local`), or one whose upload failed.
            let promote: [Action] = event.output != nil ? [.promote(id: id, attempt: attempt)] : []
            return promote + enqueueResult(event, replies: replies, now: now) + flush(now: now)
        case .attemptLost(let id, let attempt, let worker) where worker == me, .notOwner(let worker, let id, let attempt) where worker == me:
            var actions: [Action] = []
            for (number, run) in runs.sorted(by: { $0.key < $1.key }) where run.job.id == id && run.attempt == attempt && !run.lost {
                runs[number]!.lost = true
                actions += stop(
                    number, .ownershipLost, "the ledger gave this job to another attempt: stopping the run, publishing nothing", level: .error)
            }
            return actions.isEmpty ? [] : actions + [watchdogDeadline()]
        case .cancelRequested(let id, let user, _):
            return heard(id, from: user, requestedBy: requestedBy)
        case .heartbeat, .attemptLost, .notOwner, .marker:
            return []
        }
    }

    private mutating func start(_ claim: PendingClaim, attempt: Int, now: Now) -> [Action] {
        let job = claim.job
        var actions: [Action] = []
        if let sent = claim.incoming.sentAt {
            actions.append(.metric(.queueWait(task: job.task.rawValue, seconds: now.wall.timeIntervalSince1970 - sent)))
        }
        var started = JobEvent(id: job.id, task: job.task.rawValue, event: .started, worker: settings.worker)
        started.startedAt = now.wall
        started.redelivered = attempt > 1 || claim.incoming.redelivered
        if settings.warm { started.warm = true }
        runs[claim.run] = Run(
            job: job, attempt: attempt, renewedAt: claim.writtenAt, claim: claim.record, carriedAt: claim.writtenAt, slot: claim.slot)
        actions.append(
            .start(
                RunStart(run: claim.run, job: job, attempt: attempt, slot: claim.slot, redelivered: started.redelivered ?? false, started: started)))
        actions.append(watchdogDeadline())
        actions.append(.log(.info, "running attempt \(attempt)", job: job.id))
        return actions
    }

    private mutating func heard(_ id: String, from user: String?, requestedBy: String?) -> [Action] {
        let outcome = intake.cancel(id, by: user)
        var actions: [Action] = []
        for _ in outcome.refused {
            actions.append(
                .log(
                    .warning,
                    "cancel by \(user.map { "'\($0)'" } ?? "an unnamed user") ignored: neither the submitter nor an admin (cancel.authorize)",
                    job: id))
            actions.append(.metric(.cancelIgnored(reason: "unauthorized")))
        }
        for run in outcome.stop where runs[run] != nil {
            let by = [user.map { "broker user '\($0)'" }, requestedBy.map { "'\($0)' through the dashboard" }].compactMap { $0 }
            actions += stop(run, .cancelled, "cancel\(by.isEmpty ? "" : " by " + by.joined(separator: ", ")): stopping the running job")
        }
        return actions
    }

    /// Attempts the ledger still gives this worker's name that this process never ran: an
    /// earlier life's, which is over. They are expired at once, not a lease later; an expiry
    /// counts towards `topology.delivery_limit`, since the job may be what killed that life.
    private mutating func endEarlierLife(now: Now) -> [Action] {
        var actions: [Action] = []
        let mine = Set(runs.values.map { "\($0.job.id)#\($0.attempt)" })
        for job in ledger.jobs.values.sorted(by: { $0.id < $1.id }) {
            guard let live = job.live, live.worker == settings.worker, !mine.contains("\(job.id)#\(live.number)") else { continue }
            var record = LedgerRecord(kind: .expire, worker: settings.worker, at: now.wall, id: job.id, attempt: live.number)
            record.counter = job.renewCounter
            requeueRefs.insert(record.ref)
            actions.append(.log(.warning, "an earlier life of this worker left attempt \(live.number) running: expiring it now", job: job.id))
            actions += write(record, now: now)
        }
        return actions
    }

    // MARK: - Runs

    package mutating func runProgress(_ run: UInt64, _ event: JobEvent) -> [Action] {
        guard runs[run] != nil else { return [] }
        runs[run]!.progress = event
        return connected ? [.publishEvent(event)] : []
    }

    /// Run `run` ended: `event` is its result, nil when it lost its ownership or was given
    /// back; `cancelLatency` the seconds from the cancel to the process tree's end.
    package mutating func runFinished(_ run: UInt64, event: JobEvent?, cancelLatency: Double? = nil, now: Now) -> [Action] {
        guard var finished = runs.removeValue(forKey: run) else { return [] }
        _ = intake.finished(run)
        // Past the fence (this worker was frozen or its loop stalled, and the watchdog may have
        // killed the run): whatever it says, it no longer owns the job. Never published.
        if now.monotonic - finished.renewedAt > settings.fenceAfter { finished.lost = true }
        var actions: [Action] = [.metric(.slots(busy: intake.busySlots, total: settings.slots)), watchdogDeadline()]
        if finished.lost {
            return actions + [
                .discardRun(id: finished.job.id, attempt: finished.attempt),
                .log(.warning, "run ended after losing its ownership: no result", job: finished.job.id),
            ]
        }
        guard let event else {
            // No result and not lost: given up because the worker shuts down (stopped in
            // requeue mode, or its generator killed from outside during a drain, as systemd's
            // stop does): give the job back through the ledger, not counted as a failed attempt.
            return actions + release(finished.job.id, attempt: finished.attempt, now: now)
        }
        if let elapsed = event.elapsedSeconds { actions.append(.metric(.jobRan(task: finished.job.task.rawValue, seconds: elapsed))) }
        if event.reason == .cancelledWhileRunning, let cancelLatency { actions.append(.metric(.cancelLatency(seconds: cancelLatency))) }
        // Failed for this machine's sake (a broken GPU, driver, environment), not the job's: it
        // goes back for another worker, as often as `jobs.machine_fault_retries` allows the
        // fleet (the ledger counts), so a broken box does not turn the queue into failures.
        if let reason = event.reason, reason.isMachineFault,
            let given = ledger.jobs[finished.job.id]?.machineFaults, given < settings.machineFaultRetries
        {
            // Held off from now until a hold-off past the requeue's confirm: a requeue sent late
            // (the connection lost, the ledger behind) must not find this worker consuming.
            faultRequeues.insert(finished.job.id)
            updatePause()
            actions.append(
                .log(
                    .warning,
                    "failed for this machine's sake (\(reason.rawValue): \(event.message ?? "")): giving it back for another worker (\(given + 1) of jobs.machine_fault_retries \(settings.machineFaultRetries))",
                    job: finished.job.id))
            return actions + noteOutcome(event, slot: finished.slot) + release(finished.job.id, attempt: finished.attempt, reason: reason, now: now)
                + balanceIntake()
        }
        actions.append(Self.outcomeLine(event))
        return actions + noteOutcome(event, slot: finished.slot) + writeEnd(event, attempt: finished.attempt, now: now)
    }

    /// Stops every run (shutting down without a broker): their leases lapse and others take them.
    package mutating func stopAll(_ reason: StopRequest) -> [Action] {
        runs.keys.sorted().flatMap { stop($0, reason, "stopping the run: shutting down without a broker; the job goes back when its lease ends") }
    }

    /// Asks run `run` to stop, once: the first request wins, as in ``JobControl``.
    private mutating func stop(_ run: UInt64, _ reason: StopRequest, _ why: String, level: Logger.Level = .info) -> [Action] {
        guard let current = runs[run], current.stopping == nil else { return [] }
        runs[run]!.stopping = reason
        return [.stop(run: run, reason), .log(level, why, job: current.job.id)]
    }

    // MARK: - Time

    /// What is due at `now`: the fence, a heartbeat, expiries of others' overdue attempts,
    /// records to write again, results to publish, the intake's balance, shutdown. `done` is
    /// true when a shutdown has nothing left to wait for.
    package mutating func tick(now: Now) -> (actions: [Action], done: Bool) {
        var actions = fence(now: now)
        if let until = heldOffUntil, now.monotonic >= until {
            heldOffUntil = nil
            updatePause()
        }
        guard connected else { return (actions, false) }
        actions += rewriteUnseen(now: now)
        guard caughtUp else {
            // A shutdown does not wait for the catch-up: it waits only for what is pending.
            guard shutdown != nil else { return (actions, false) }
            let (more, done) = shutDown(now: now)
            return (actions + more, done)
        }
        if now.monotonic >= (nextHeartbeat ?? now.monotonic) { actions += writeHeartbeat(now: now) }
        actions += expireOverdue(now: now)
        actions += sendRequeues(now: now)
        actions += flush(now: now)
        if shutdown != nil {
            let (more, done) = shutDown(now: now)
            return (actions + more, done)
        }
        return (actions + balanceIntake(), false)
    }

    /// When the owner loop should call ``tick(now:)`` next at the latest.
    package func nextTick(now: Now) -> ContinuousClock.Instant {
        var next = now.monotonic + .seconds(1)
        if let nextHeartbeat { next = min(next, nextHeartbeat) }
        if let drainDeadline { next = min(next, drainDeadline) }
        return max(next, now.monotonic)
    }

    package mutating func requestShutdown(_ mode: ShutdownMode) {
        if shutdown != .requeue { shutdown = mode }
    }

    /// The owner's own fence: a run whose renewals stopped coming back is stopped before the
    /// lease ends for anyone else (the watchdog kills it outright if this thread cannot).
    private mutating func fence(now: Now) -> [Action] {
        var actions: [Action] = []
        for (number, run) in runs.sorted(by: { $0.key < $1.key }) where !run.lost && now.monotonic - run.renewedAt > settings.fenceAfter {
            runs[number]!.lost = true
            actions += stop(
                number, .ownershipLost,
                "no renewal of this job reached the ledger for \(settings.fenceAfter): stopping the run before its lease ends; another worker will run it",
                level: .error)
        }
        return actions.isEmpty ? [] : actions + [watchdogDeadline()]
    }

    /// Renews every run this worker owns and tells the fleet it is alive (`genworker workers`);
    /// writes the claim of every run older than half the window again (`carry`), so a reader
    /// whose window starts after the claim still knows the job and can requeue it.
    private mutating func writeHeartbeat(now: Now) -> [Action] {
        heartbeatCounter += 1
        nextHeartbeat = now.monotonic + settings.renewEvery
        var record = LedgerRecord(kind: .heartbeat, worker: settings.worker, at: now.wall)
        record.counter = heartbeatCounter
        record.life = settings.life
        let live = runs.filter { !$0.value.lost }
        record.runs = live.values.map { HeartbeatRun(id: $0.job.id, attempt: $0.attempt, progress: $0.progress?.progress, step: $0.progress?.step) }
            .sorted { $0.id < $1.id }
        record.slots = settings.slots
        record.quarantined = quarantined ? true : nil
        record.node = node
        record.version = GenWorkerVersion.current
        heartbeats = heartbeats.filter { now.monotonic - $0.value.writtenAt < settings.lease }
        heartbeats[record.ref] = (now.monotonic, live.keys.sorted())
        var actions: [Action] = [.write(record)]
        for (number, run) in live.sorted(by: { $0.key < $1.key }) where now.monotonic - run.carriedAt >= settings.carryEvery {
            var carry = LedgerRecord(kind: .carry, worker: settings.worker, at: now.wall, id: run.job.id, attempt: run.attempt)
            carry.job = run.claim.job
            carry.task = run.claim.task
            carry.replyTo = run.claim.replyTo
            carry.correlationID = run.claim.correlationID
            carry.submitter = run.claim.submitter
            carry.replies = ledger.jobs[run.job.id]?.replies
            carry.machineFaults = ledger.jobs[run.job.id].flatMap { $0.machineFaults > 0 ? $0.machineFaults : nil }
            carry.counter = heartbeatCounter
            runs[number]?.carriedAt = now.monotonic
            actions += write(carry, now: now)
        }
        return actions
    }

    /// Once caught up: proposes the expiry of every live attempt not renewed for a lease.
    private mutating func expireOverdue(now: Now) -> [Action] {
        // A scan of every live attempt: once a second is enough for a lease of seconds or minutes.
        guard now.monotonic >= (nextExpiryScan ?? now.monotonic) else { return [] }
        nextExpiryScan = now.monotonic + .seconds(1)
        var actions: [Action] = []
        for overdue in ledger.overdue(at: now.steady, lease: settings.lease.inSeconds) {
            let key = "\(overdue.id)#\(overdue.attempt)#\(overdue.counter)"
            guard proposedExpiries.insert(key).inserted else { continue }
            var record = LedgerRecord(kind: .expire, worker: settings.worker, at: now.wall, id: overdue.id, attempt: overdue.attempt)
            record.counter = overdue.counter
            requeueRefs.insert(record.ref)
            actions.append(.log(.warning, "attempt \(overdue.attempt) has not been renewed for jobs.lease_s: expiring it", job: overdue.id))
            actions += write(record, now: now)
        }
        if proposedExpiries.count > 10_000 { proposedExpiries.removeAll() }
        return actions + requeueUnrequeued(now: now)
    }

    /// Requeues every job given back (a valid expiry or release) whose requeue has not reached
    /// the jobs exchange a lease and this worker's stagger after the record: its writer, who
    /// owed it, stopped or lost the broker first (finding 10). Once per attempt per life.
    private mutating func requeueUnrequeued(now: Now) -> [Action] {
        var actions: [Action] = []
        for requeue in ledger.unrequeued(at: now.steady, grace: (settings.lease + settings.requeueStagger).inSeconds) {
            guard !requeues.contains(where: { $0.requeue.id == requeue.id }), repairedRequeues.insert("\(requeue.id)#\(requeue.after)").inserted
            else {
                continue
            }
            requeues.append((requeue, now.monotonic, false))
            actions.append(
                .log(
                    .warning,
                    "attempt \(requeue.after) was given back a lease ago and its requeue never reached the jobs exchange: requeueing the job",
                    job: requeue.id))
        }
        if repairedRequeues.count > 10_000 { repairedRequeues.removeAll() }
        return actions
    }

    /// Writes again every record not seen back within `rewriteAfter`.
    private mutating func rewriteUnseen(now: Now) -> [Action] {
        var actions: [Action] = []
        for (ref, pending) in unseen.sorted(by: { $0.value.writtenAt < $1.value.writtenAt })
        where now.monotonic - pending.writtenAt >= settings.rewriteAfter {
            unseen[ref]?.writtenAt = now.monotonic
            actions.append(
                .log(
                    .info, "ledger record \(pending.record.kind.rawValue) not seen back after \(settings.rewriteAfter): writing it again",
                    job: pending.record.id))
            actions.append(.write(pending.record))
        }
        return actions
    }

    /// Consumes only while a slot is free (deliveries are acked once claimed, so the prefetch
    /// no longer bounds what a worker takes), and not while shutting down.
    private mutating func balanceIntake() -> [Action] {
        guard caughtUp, connected else { return [] }
        let want = shutdown == nil && !intake.paused && !intake.freeSlots.isEmpty
        guard want != consuming else { return [] }
        consuming = want
        return [.consume(want)]
    }

    /// The outputs disk's free space, against `outputs.min_free_mb`: below it the worker takes no
    /// new jobs (a video it could not write would fail the job; another worker can run it), and
    /// takes them again once there is room. Running jobs go on.
    package mutating func outputsSpace(freeMB: Int, floorMB: Int) -> [Action] {
        let low = freeMB < floorMB
        guard low != outputsLow else { return [] }
        outputsLow = low
        updatePause()
        let message =
            low
            ? "outputs disk has \(freeMB) MB free, below outputs.min_free_mb (\(floorMB)): taking no new jobs"
            : "outputs disk has \(freeMB) MB free again: taking jobs"
        return [.log(low ? .warning : .info, message, job: nil)] + balanceIntake()
    }

    // MARK: - Quarantine

    /// Counts, per slot, failures that blame the machine (``JobReason/isMachineFault``); a
    /// completed job on that slot starts its count again; other endings (the job's own
    /// failures, cancels, out of memory) neither count nor reset. At `worker.quarantine_after`
    /// on one slot the worker takes no more jobs (what runs goes on) and says so in its
    /// heartbeats until ``probed(healthy:)``.
    private mutating func noteOutcome(_ event: JobEvent, slot: Int) -> [Action] {
        if event.event == .completed {
            machineFaults[slot] = nil
            return []
        }
        guard settings.quarantineAfter > 0, let reason = event.reason, reason.isMachineFault else { return [] }
        machineFaults[slot, default: 0] += 1
        let count = machineFaults[slot]!
        guard count >= settings.quarantineAfter, !quarantined else { return [] }
        quarantined = true
        updatePause()
        nextHeartbeat = nil  // the fleet hears of it at the next tick, not a renewal later
        return [
            .log(
                .error,
                "\(count) jobs in a row failed for this machine's sake (the last: \(reason.rawValue), slot \(slot)): quarantined, taking no jobs until the probe (worker.probe_command) passes",
                job: nil),
            .metric(.quarantined(true)),
        ] + balanceIntake()
    }

    /// Gives attempt `attempt` of `id` back through the ledger (a release; `reason` when a
    /// machine's fault gave it back); once it comes back valid this worker requeues the job.
    private mutating func release(_ id: String, attempt: Int, reason: JobReason? = nil, now: Now) -> [Action] {
        var record = LedgerRecord(kind: .release, worker: settings.worker, at: now.wall, id: id, attempt: attempt)
        record.reason = reason?.rawValue
        requeueRefs.insert(record.ref)
        return write(record, now: now)
    }

    /// Until when the worker takes no job after giving one back for a machine fault, and the
    /// jobs so given back whose requeue the broker has not confirmed yet (held off until then).
    private var heldOffUntil: ContinuousClock.Instant?
    private var faultRequeues: Set<String> = []

    /// The intake takes no job while the outputs disk is low, the worker is quarantined, or it
    /// just gave a job back for a machine fault.
    private mutating func updatePause() {
        intake.paused = outputsLow || quarantined || heldOffUntil != nil || !faultRequeues.isEmpty
    }

    /// The quarantine probe's answer: a pass ends the quarantine.
    package mutating func probed(healthy: Bool) -> [Action] {
        guard quarantined, healthy else { return [] }
        quarantined = false
        machineFaults = [:]
        nextHeartbeat = nil
        updatePause()
        return [.log(.info, "the quarantine probe passed: taking jobs again", job: nil), .metric(.quarantined(false))] + balanceIntake()
    }

    /// Whether something of this worker waits on the broker: a claim or an end not yet
    /// decided in the ledger, a result not confirmed, a requeue owed or not confirmed.
    package var waitsOnBroker: Bool {
        !(claims.isEmpty && ends.isEmpty && rejections.isEmpty && outbox.isEmpty && requeueRefs.isEmpty && requeues.isEmpty)
    }

    /// Stops taking jobs; past the drain deadline (or in requeue mode) stops running jobs and
    /// gives them back. Done when nothing runs and every result is out, or, once the runs are
    /// over, when the broker has had `shutdownPatience` to take what is pending.
    private mutating func shutDown(now: Now) -> (actions: [Action], done: Bool) {
        guard var mode = shutdown else { return ([], false) }
        var actions: [Action] = []
        if mode == .drain {
            let deadline = drainDeadline ?? now.monotonic + settings.drainTimeout
            drainDeadline = deadline
            if now.monotonic >= deadline {
                if intake.shutdown != .requeue {
                    actions.append(.log(.warning, "the drain took longer than shutdown.drain_timeout_s: requeueing what still runs", job: nil))
                }
                mode = .requeue
            }
        }
        if consuming {
            consuming = false
            actions.append(.consume(false))
            actions.append(.log(.info, "shutting down (\(mode.rawValue)): \(runs.count) job(s) running", job: nil))
        }
        for run in intake.beginShutdown(mode) where runs[run] != nil {
            actions += stop(run, .shutdown, "shutdown: stopping the job to give it back to the queue")
        }
        guard runs.isEmpty else { return (actions, false) }
        if !waitsOnBroker { return (actions, true) }
        // Runs are over; what waits on the broker waits a bounded time: a broker that does not
        // answer must not keep a stopping worker alive. Leases then hand its jobs on.
        let giveUp = giveUpAt ?? now.monotonic + settings.shutdownPatience
        giveUpAt = giveUp
        guard now.monotonic >= giveUp else { return (actions, false) }
        actions.append(
            .log(
                .error,
                "stopping with \(ends.count) result(s), \(outbox.count) publish(es) and \(requeueRefs.count) requeue(s) unconfirmed: the broker did not answer; the jobs go on when their leases end",
                job: nil))
        return (actions, true)
    }

    // MARK: - Results

    /// Writes a job's result to the ledger; it is published once it comes back as the job's one result.
    private mutating func writeEnd(_ event: JobEvent, attempt: Int, now: Now) -> [Action] {
        var record = LedgerRecord(kind: .end, worker: settings.worker, at: now.wall, id: event.id, attempt: attempt)
        record.result = event
        ends[record.ref] = (event, attempt)
        return write(record, now: now)
    }

    /// The job's one result: to the events exchange (so the results queue) and every attached reply_to.
    private mutating func enqueueResult(_ event: JobEvent, replies: [LedgerState.Reply], now: Now) -> [Action] {
        outbox.append(Outgoing(event: event, destination: .results, notBefore: now.monotonic))
        outbox += replies.map { Outgoing(event: event, destination: .reply($0), notBefore: now.monotonic) }
        return [.metric(.jobFinished(event))]
    }

    /// Every result due, to publish now (one batch at a time).
    private mutating func flush(now: Now) -> [Action] {
        guard connected, !publishing else { return [] }
        let due = outbox.filter { $0.notBefore <= now.monotonic }
        guard !due.isEmpty else { return [] }
        publishing = true
        return [.publishResults(due)]
    }

    /// Every requeue due and not on its way.
    private mutating func sendRequeues(now: Now) -> [Action] {
        guard connected, caughtUp else { return [] }
        var actions: [Action] = []
        for index in requeues.indices where !requeues[index].sent && requeues[index].notBefore <= now.monotonic {
            requeues[index].sent = true
            actions.append(.requeue(requeues[index].requeue))
        }
        return actions
    }

    /// The broker's answer to a ``Action/requeue(_:)``: confirmed, or refused (tried again in 5 s).
    package mutating func requeued(_ id: String, accepted: Bool, now: Now) -> [Action] {
        guard let index = requeues.firstIndex(where: { $0.requeue.id == id && $0.sent }) else { return [] }
        if accepted {
            requeues.remove(at: index)
            if faultRequeues.remove(id) != nil {
                heldOffUntil = max(heldOffUntil ?? now.monotonic, now.monotonic + settings.holdOff)
                updatePause()
            }
            return []
        }
        requeues[index].sent = false
        requeues[index].notBefore = now.monotonic + .seconds(5)
        return [.log(.error, "the broker refused to requeue the job: trying again in 5 s", job: id)]
    }

    /// The broker's answers to a ``Action/publishResults(_:)``: a confirmed destination is
    /// never sent again; a refusing `reply_to` (full, with reject-publish) is dropped, since
    /// retrying would never end; the results queue is tried again in 5 s. Neither holds up the others.
    package mutating func resultsPublished(_ items: [Outgoing], accepted: [Bool], now: Now) -> [Action] {
        publishing = false
        var actions: [Action] = []
        for (item, ok) in zip(items, accepted) {
            guard let index = outbox.firstIndex(of: item) else { continue }
            if ok {
                outbox.remove(at: index)
                if let answered = item.answers { actions.append(answered.settle) }
                continue
            }
            switch item.destination {
            case .reply(let reply):
                actions.append(.log(.error, "reply_to \(reply.replyTo) refused the result (basic.nack): dropped", job: item.event.id))
                outbox.remove(at: index)
                if let answered = item.answers { actions.append(answered.settle) }
            case .results:
                actions.append(.log(.error, "the broker refused the result (basic.nack): trying again in 5 s", job: item.event.id))
                outbox[index].notBefore = now.monotonic + .seconds(5)
            }
        }
        return actions + flush(now: now)
    }

    // MARK: - Helpers

    /// Writes `record` and keeps it until it comes back through the ledger (see `unseen`).
    private mutating func write(_ record: LedgerRecord, now: Now) -> [Action] {
        unseen[record.ref] = (record, now.monotonic)
        return connected ? [.write(record)] : []
    }

    /// The watchdog kills the generators when the oldest renewal is a lease − lease/20 old: if
    /// this worker is frozen (SIGSTOP, a stalled VM), no run outlives its lease.
    private func watchdogDeadline() -> Action {
        let oldest = runs.values.filter { !$0.lost }.map(\.renewedAt).min()
        return .armWatchdog(oldest.map { $0 + settings.lease - settings.lease / 20 })
    }

    private static func outcomeLine(_ event: JobEvent) -> Action {
        let text = "\(event.event.rawValue)\(event.reason.map { " (\($0.rawValue))" } ?? "")"
        switch event.reason {
        case .deliveryLimit?: return .log(.error, "\(text): \(event.message ?? "")", job: event.id)
        case .cancelledBeforeStart?: return .log(.info, "cancelled before start", job: event.id)
        default: return .log(.info, text, job: event.id)
        }
    }
}

/// Where a terminal result goes: the events exchange (and so the results queue), or one
/// submission's `reply_to`.
package enum BrokerDestination: Sendable, Equatable {
    case results
    case reply(LedgerState.Reply)
}
