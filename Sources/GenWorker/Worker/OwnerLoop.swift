import AMQP
import Foundation
import Logging

/// The worker's owner thread: the only code that touches the AMQP connection and the
/// worker's state. It connects (and reconnects with backoff, while its runs go on), follows
/// the ledger, asks ``JobIntake`` what to do with each delivery, claim, cancel and finished
/// run, and carries the decisions out through ``BrokerLink``. Timers (heartbeats, the
/// fence, expiries of other workers' jobs, the drain deadline, the reconnect backoff) live
/// here, and every wait is on the connection or the inbox's wake pipe.
final class OwnerLoop {
    /// A job running on this worker.
    private struct ActiveRun {
        let job: JobRequest
        let attempt: Int
        let control: JobControl
        let thread: OwnedThread
        /// When the last renewal of this run that came back through the ledger was written.
        var renewedAt: ContinuousClock.Instant
        var progress: JobEvent?
        /// The ledger gave the job to someone else, or the fence stopped it: publish nothing.
        var lost = false
        /// The claim as written, and when it last went into the ledger (see ``carryLongRuns(_:)``).
        let claim: LedgerRecord
        var carriedAt: ContinuousClock.Instant
    }

    /// A delivery whose claim is in the ledger's hands.
    private struct PendingClaim {
        let record: LedgerRecord
        let run: UInt64
        let job: JobRequest
        let slot: Int
        let delivery: AMQPDelivery
        let writtenAt: ContinuousClock.Instant
    }

    /// An invalid job's rejection, in the ledger's hands; its delivery is dead-lettered once decided.
    private struct PendingRejection {
        let deliveryTag: UInt64
        let event: JobEvent
        let reply: LedgerState.Reply?
    }

    /// One result for one destination, waiting for the broker's confirm.
    private struct Outgoing {
        let event: JobEvent
        let destination: BrokerLink.Destination
        var notBefore: ContinuousClock.Instant = .now
    }

    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let metrics: WorkerMetrics
    private let inbox: WorkerInbox
    private let validator: JobValidator
    private let runner: JobRunner
    private var intake: JobIntake
    private var runs: [UInt64: ActiveRun] = [:]
    private var drainDeadline: ContinuousClock.Instant?
    /// The node of `amqp.endpoints` to try first: the last one that answered, or after a
    /// loss the one after it.
    private var nodeIndex = 0
    /// One warm runner per slot (`wan.warm`), kept across jobs and reconnects.
    private let warmRunners: [WarmRunner]
    private var watchdog: Watchdog?

    // The ledger, as this worker follows it.
    private var ledger: LedgerState
    /// The offset of the next ledger record to read (resumes the follower after a reconnect).
    private var ledgerOffset: Int64?
    /// True once this connection's catch-up marker came back: only then may the worker
    /// expire other workers' jobs.
    private var caughtUp = false
    /// The ref of this connection's catch-up marker.
    private var marker: String?
    private var lastLedgerDelivery = ContinuousClock.now
    private var claims: [String: PendingClaim] = [:]
    /// Results written to the ledger, by ref, until they come back (kept across reconnects),
    /// with their attempt (whose run directory holds the video until the end counts).
    private var ends: [String: (event: JobEvent, attempt: Int)] = [:]
    private var rejections: [String: PendingRejection] = [:]
    /// Records this worker wrote that have not come back through the ledger yet, by ref. A
    /// stream publish without confirms can vanish (a node restarting, a leader moving), so
    /// each is written again every ``rewriteAfter`` until it is seen; the fold ignores a
    /// second copy of a record (same ref).
    private var unseen: [String: (record: LedgerRecord, writtenAt: ContinuousClock.Instant)] = [:]
    private let rewriteAfter = Duration.seconds(5)
    /// Results the ledger accepted, one entry per destination, until the broker confirms each.
    private var outbox: [Outgoing] = []
    /// The first catch-up of this process: afterwards, attempts an earlier life of this
    /// worker left running are ended at once (the identity lock proves that life is over).
    private var firstCatchUp = true
    /// When a shutdown stops waiting for the broker (leases then hand the jobs on).
    private var shutdownGiveUpAt: ContinuousClock.Instant?
    private let clock = WorkerClock()
    /// `topology.ledger_writers`, resolved once.
    private let ledgerWriters: Set<String>?
    /// Refs of expiries and releases this worker wrote: a valid one obliges it to requeue the job.
    private var requeueRefs: Set<String> = []
    /// Expiries already written, as `id#attempt#counter`, so each is proposed once.
    private var proposedExpiries: Set<String> = []
    private var heartbeats: [String: (writtenAt: ContinuousClock.Instant, runs: [UInt64])] = [:]
    private var heartbeatCounter = 0
    /// `x-genworker-requested-by` of the ledger message being folded (for the cancel log line).
    private var cancelRequester: String?
    private var nextHeartbeat = ContinuousClock.now
    private var nextExpiryScan = ContinuousClock.now
    private let lease: Duration
    /// An owner whose renewals stopped coming back stops its run this long after the last
    /// one: lease − grace − lease/10, so the process tree is gone before anyone may expire it.
    private let fenceAfter: Duration
    private let renewEvery: Duration

    init(configuration: WorkerConfiguration, logger: Logger, metrics: WorkerMetrics, inbox: WorkerInbox) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.inbox = inbox
        validator = JobValidator(configuration: configuration)
        ledgerWriters = configuration.ledgerWriters
        runner = JobRunner(configuration: configuration)
        intake = JobIntake(configuration: configuration)
        ledger = LedgerState(retention: Double(configuration.topology.ledgerRetentionHours) * 3600)
        lease = .seconds(configuration.jobs.leaseSeconds)
        fenceAfter = .seconds(configuration.jobs.leaseSeconds * 0.9 - configuration.supervisor.graceSeconds)
        renewEvery = .seconds(configuration.jobs.leaseSeconds / 4)
        warmRunners =
            !configuration.wan.warm
            ? []
            : (0..<configuration.worker.slots).map { slot in
                WarmRunner(
                    options: .init(
                        python: configuration.wan.python,
                        script: configuration.wan.warmRunner ?? WarmRunner.defaultScript,
                        repo: configuration.wan.repo, idleSeconds: configuration.wan.warmIdleSeconds,
                        maxJobs: configuration.wan.warmMaxJobs, maxResidentBytes: configuration.wan.warmMaxRSSMB << 20,
                        environment: WanCommand.childEnvironment(
                            configuration: configuration, devices: configuration.worker.slots > 1 ? String(slot) : nil)))
            }
    }

    /// Until shutdown: connect, serve; after a loss keep the runs going (the ledger, not the
    /// connection, makes them ours) and reconnect to any node.
    func run() {
        metrics.registerAtStart(slots: configuration.worker.slots, tasks: configuration.worker.tasks)
        watchdog = prepareProcesses()
        defer { watchdog?.stop() }
        var backoff = Duration.milliseconds(250)
        while true {
            do {
                try serveConnection()
                break
            } catch {
                setConsuming(false)
                caughtUp = false
                logger.error("broker connection ended: \(error)")
                nodeIndex += 1  // a lost node is tried last
                // Undecided claims and rejections went back to the queue with their deliveries.
                let dropped = Set(intake.connectionLost())
                for (ref, claim) in claims where dropped.contains(claim.run) {
                    claims[ref] = nil
                    unseen[ref] = nil
                }
                for ref in rejections.keys { unseen[ref] = nil }
                rejections.removeAll()
                if inbox.shutdownMode != nil {
                    stopAllRuns(.shutdown, because: "shutting down without a broker: the jobs go back when their lease ends")
                    break
                }
                if !runs.isEmpty { logger.warning("\(runs.count) job(s) keep running; their results wait for the broker") }
                logger.info("reconnecting in \(backoff)")
                let end = ContinuousClock.now + backoff
                while inbox.shutdownMode == nil, ContinuousClock.now < end {
                    fence()
                    for update in inbox.take() { handle(update, link: nil) }
                    inbox.wake.wait(timeout: min(end - .now, .seconds(1)))
                }
                backoff = min(backoff * 2, configuration.amqp.reconnectMax)
            }
        }
        setConsuming(false)
        for runner in warmRunners { runner.shutdown(grace: configuration.supervisor.grace) }
        logger.info("worker stopped")
    }

    /// Becomes the subreaper, kills what an earlier life of this worker left, starts the watchdog.
    private func prepareProcesses() -> Watchdog? {
        // Descendants that leave their session stay ours to find, kill and reap.
        if !ProcessTree.becomeSubreaper() { logger.warning("cannot become child subreaper (prctl); orphaned generator processes go to init") }
        let owner = "GENWORKER_OWNER=\(configuration.ownerToken)"
        let leftovers = ProcessTree.processes(withEnvironment: owner).count
        if leftovers > 0 {
            logger.warning("killing \(leftovers) generator process(es) left by an earlier life of this worker")
            ProcessTree.killAll(environment: owner, timeout: .seconds(5))
        }
        do {
            return try Watchdog.start(path: configuration.supervisor.watchdog ?? Watchdog.defaultPath, ownerToken: configuration.ownerToken)
        } catch {
            logger.warning("no watchdog (\(error)): if this worker is killed, its generators may outlive it")
            return nil
        }
    }

    /// One connection's life. Returns when shut down with nothing left to do; throws when the connection fails.
    private func serveConnection() throws {
        var link = try connectToANode()
        defer { link.connection.close() }
        try catchUp(link)
        // What did not come back before the last connection ended (results, releases, expiries).
        for (ref, pending) in unseen {
            try link.write(pending.record)
            unseen[ref]?.writtenAt = .now
        }
        // Renew before anything that may wait on the broker (the results' confirms).
        try writeHeartbeat(link)
        if inbox.shutdownMode == nil {
            try link.consumeJobs()
            setConsuming(true)
            logger.info("consuming \(configuration.topology.jobsQueue) with \(configuration.worker.slots) slot(s) as \(configuration.worker.name)")
        }
        while true {
            // The fence first: a worker waking from a freeze must not publish what it no longer owns.
            fence()
            for update in inbox.take() { handle(update, link: link) }
            try flushResults(link)
            if ContinuousClock.now >= nextHeartbeat { try writeHeartbeat(link) }
            try expireOverdue(link)
            try rewriteUnseen(link)
            if let mode = inbox.shutdownMode {
                if try shutDown(mode, link: &link) { return }
            } else {
                try balanceIntake(&link)
            }
            var wait = min(Duration.seconds(1), max(nextHeartbeat - .now, .zero))
            if let drainDeadline { wait = min(wait, max(drainDeadline - .now, .zero)) }
            guard let event = try link.connection.nextEvent(timeout: wait) else { continue }
            try handle(event, link: link)
        }
    }

    /// Follows the ledger (from where this worker left it, or from the retention window)
    /// until a marker written now comes back: every record before it has then been folded.
    /// Runs go on meanwhile (their updates are handled, the fence is kept); a lost marker is
    /// written again; a shutdown does not wait for the catch-up.
    private func catchUp(_ link: BrokerLink) throws {
        let started = ContinuousClock.now
        let before = ledger.folded
        try link.followLedger(from: ledgerOffset)
        unseen = unseen.filter { $0.value.record.kind != .marker }
        let record = LedgerRecord(kind: .marker, worker: configuration.worker.name, at: clock.wall)
        marker = record.ref
        try write(record, link: link)
        // A stream that delivers nothing for this long while our marker is out is stuck (a
        // node just restarted can leave a consumer that never gets a record): connect again.
        let stallLimit = Duration.seconds(10)
        lastLedgerDelivery = .now
        while !caughtUp {
            if inbox.shutdownMode != nil {
                logger.info("shutting down during the ledger catch-up")
                return
            }
            guard ContinuousClock.now - lastLedgerDelivery < stallLimit else {
                throw GenWorkerError(
                    .brokerFailed, "the ledger \(configuration.topology.ledgerStream) delivered nothing for \(stallLimit) during the catch-up")
            }
            fence()
            for update in inbox.take() { handle(update, link: link) }
            try rewriteUnseen(link)
            if let event = try link.connection.nextEvent(timeout: .seconds(1)) { try handle(event, link: link) }
        }
        let took = ContinuousClock.now - started
        let tookSeconds = took.inSeconds
        metrics.ledgerCaughtUp(seconds: tookSeconds, records: ledger.folded - before)
        logger.info(
            "ledger caught up: \(ledger.folded - before) record(s) in \(String(format: "%.3f", tookSeconds)) s, \(ledger.jobs.count) job(s) in the window"
        )
        if firstCatchUp {
            firstCatchUp = false
            try endEarlierLife(link)
        }
    }

    /// Attempts the ledger still gives this worker's name that this process never ran: an
    /// earlier life's, which is over (this process holds the name's lock and killed what that
    /// life left). They are expired at once, not a lease later; an expiry counts towards
    /// `topology.delivery_limit`, since the job may be what killed that life.
    private func endEarlierLife(_ link: BrokerLink) throws {
        let me = configuration.worker.name
        for job in ledger.jobs.values.sorted(by: { $0.id < $1.id }) {
            guard let live = job.live, live.worker == me else { continue }
            var record = LedgerRecord(kind: .expire, worker: me, at: clock.wall, id: job.id, attempt: live.number)
            record.counter = job.renewCounter
            requeueRefs.insert(record.ref)
            logger.warning("an earlier life of this worker left attempt \(live.number) running: expiring it now", metadata: ["job": "\(job.id)"])
            try write(record, link: link)
        }
    }

    /// Writes `record` and keeps it until it comes back through the ledger (see ``unseen``).
    /// Without a link, it goes after the next catch-up.
    private func write(_ record: LedgerRecord, link: BrokerLink?) throws {
        unseen[record.ref] = (record, .now)
        try link?.write(record)
    }

    /// Writes again every record not seen back within ``rewriteAfter``.
    private func rewriteUnseen(_ link: BrokerLink) throws {
        let now = ContinuousClock.now
        for (ref, pending) in unseen where now - pending.writtenAt >= rewriteAfter {
            logger.info("ledger record \(pending.record.kind.rawValue) not seen back after \(rewriteAfter): writing it again", metadata: ["job": "\(pending.record.id ?? "-")"])
            unseen[ref]?.writtenAt = now
            try link.write(pending.record)
        }
    }

    private func handle(_ event: AMQPEvent, link: BrokerLink) throws {
        switch event {
        case .delivery(let delivery) where delivery.channel == link.jobs.id:
            try receive(delivery, link: link)
        case .delivery(let delivery) where delivery.channel == link.ledger.id:
            try fold(delivery, link: link)
        case .channelClosed(let channel, let code, let text):
            if text.contains("delivery acknowledgement") && text.contains("timed out") {
                logger.error("RabbitMQ's consumer_timeout expired on a delivery not yet claimed. Broker said: \(code) \(text)")
            }
            throw AMQPError(.channelClosed, "channel \(channel) closed by the broker: \(text)", replyCode: code)
        case .consumerCancelled(_, let tag):
            throw AMQPError(.invalidState, "the broker cancelled consumer \(tag) (queue deleted, or its node went down)")
        case .connectionClosed(let error):
            throw error
        case .blocked(let reason):
            logger.warning("the broker blocked publishing: \(reason)")
        case .returned, .unblocked, .woken, .delivery:
            break
        }
    }

    /// Folds one ledger record and acts on what it decided.
    private func fold(_ delivery: AMQPDelivery, link: BrokerLink) throws {
        lastLedgerDelivery = .now
        if let next = LedgerStream.next(after: delivery) { ledgerOffset = next }
        let entry = LedgerEntry.read(
            exchange: delivery.exchange, properties: delivery.properties, body: delivery.body, topology: configuration.topology,
            writers: ledgerWriters)
        if case .forged(let record, let user) = entry {
            logger.warning(
                "ignored a ledger \(record.kind.rawValue) record that broker user '\(user ?? "-")' wrote in the name of \(record.worker) (not in topology.ledger_writers)",
                metadata: ["job": "\(record.id ?? "-")"])
            metrics.ledgerRecordIgnored()
        }
        let effects = ledger.apply(entry, at: clock.steady, live: caughtUp)
        if case .record(let record) = entry, record.worker == configuration.worker.name { unseen[record.ref] = nil }
        try link.ledger.ack(delivery.deliveryTag)
        // A cancel from the dashboard names the person behind it (the broker user is the dashboard's).
        cancelRequester = delivery.properties.headers?["x-genworker-requested-by"]?.stringValue
        for effect in effects {
            if case .marker(let ref) = effect, ref == marker { caughtUp = true }
            try act(on: effect, link: link)
        }
    }

    private func act(on effect: LedgerEffect, link: BrokerLink) throws {
        let me = configuration.worker.name
        switch effect {
        case .claimDecided(let ref, _, let id, let outcome):
            guard let claim = claims.removeValue(forKey: ref) else { return }
            // The ack first: if it fails, the claim is dropped with the connection (its slot
            // freed), and a won attempt nobody runs expires after a lease.
            try link.jobs.ack(claim.delivery.deliveryTag)
            let decision = intake.claimDecided(claim.run, outcome: outcome, job: ledger.jobs[id])
            switch decision {
            case .run(let attempt):
                start(claim, attempt: attempt, link: link)
            case .attached:
                logger.info("already running elsewhere: this submission's reply_to gets the result", metadata: ["job": "\(id)"])
            case .answer(let result):
                // Only to this submission's reply_to: the results queue and the events exchange
                // had the job's one result when it ended.
                logger.info("already ended: answering the reply_to with the recorded result", metadata: ["job": "\(id)"])
                if let replyTo = claim.delivery.properties.replyTo, !replyTo.isEmpty {
                    outbox.append(Outgoing(event: result, destination: .reply(.init(replyTo: replyTo, correlationID: claim.delivery.properties.correlationID))))
                    try flushResults(link)
                }
            case .end(let event, let attempt):
                logOutcome(event)
                writeEnd(event, attempt: attempt, link: link)
            }
            metrics.slots(busy: intake.busySlots, total: configuration.worker.slots)
        case .heartbeat(let ref, let worker) where worker == me:
            guard let heartbeat = heartbeats.removeValue(forKey: ref) else { return }
            metrics.ledgerLag(seconds: (ContinuousClock.now - heartbeat.writtenAt).inSeconds)
            for run in heartbeat.runs where runs[run] != nil {
                runs[run]!.renewedAt = max(runs[run]!.renewedAt, heartbeat.writtenAt)
            }
            armWatchdog()
        case .expiryDecided(let ref, _, let id, let valid, let requeue):
            guard requeueRefs.remove(ref) != nil, valid, let requeue else { return }
            if try link.requeue(requeue) {
                logger.warning("requeued job whose worker stopped renewing it (or released it)", metadata: ["job": "\(id)"])
            } else {
                logger.error("the broker refused to requeue the job", metadata: ["job": "\(id)"])
            }
        case .endDecided(let ref, _, let id, let counted, _, let replies):
            if let rejection = rejections.removeValue(forKey: ref) {
                // An invalid job: its rejection is the id's result only if it had none; the
                // submission's own reply_to hears why its message was refused either way.
                if counted { enqueueResult(rejection.event, replies: []) }
                if let reply = rejection.reply { outbox.append(Outgoing(event: rejection.event, destination: .reply(reply))) }
                try link.settle(rejection.deliveryTag, requeue: false)
                try flushResults(link)
                return
            }
            guard let (event, attempt) = ends.removeValue(forKey: ref) else { return }
            if counted {
                // Only now does the video take the job's name: a run that lost never touches it.
                if event.event == .completed {
                    do { try JobRunner.promote(outputs: configuration.outputs.dir, id: id, attempt: attempt) } catch {
                        logger.error("\(error)", metadata: ["job": "\(id)"])
                    }
                }
                enqueueResult(event, replies: replies)
                try flushResults(link)
            } else {
                try? FileManager.default.removeItem(atPath: JobRunner.runDirectory(outputs: configuration.outputs.dir, id: id, attempt: attempt))
                logger.warning("result not published: the ledger gave the job to another attempt, or it had ended", metadata: ["job": "\(id)"])
            }
        case .attemptLost(let id, let attempt, let worker) where worker == me, .notOwner(let worker, let id, let attempt) where worker == me:
            for (number, run) in runs where run.job.id == id && run.attempt == attempt && !run.lost {
                runs[number]!.lost = true
                if run.control.requestStop(.ownershipLost) {
                    logger.error("the ledger gave this job to another attempt: stopping the run, publishing nothing", metadata: ["job": "\(id)"])
                }
            }
        case .cancelRequested(let id, let user, _):
            heard(id, from: user)
        case .heartbeat, .attemptLost, .notOwner, .marker:
            break
        }
    }

    /// The first node that answers, starting at ``nodeIndex``; with every node down, the
    /// first node's error.
    private func connectToANode() throws -> BrokerLink {
        let urls = configuration.amqp.endpoints
        var failure: Error?
        for offset in 0..<urls.count {
            let index = (nodeIndex + offset) % urls.count
            do {
                let link = try BrokerLink(url: urls[index], configuration: configuration, wake: inbox.wake, logger: logger, metrics: metrics)
                nodeIndex = index
                if urls.count > 1 { logger.info("connected to \(GenWorkerError.redacted(url: urls[index]))") }
                return link
            } catch {
                if urls.count > 1 { logger.warning("cannot use \(GenWorkerError.redacted(url: urls[index])): \(error)") }
                failure = failure ?? error
            }
        }
        throw failure ?? AMQPError(.invalidState, "no broker URL")
    }

    // MARK: - Carrying out decisions

    private func receive(_ delivery: AMQPDelivery, link: BrokerLink) throws {
        let validation = Result { () throws(JobRejection) in
            try validator.validate(body: delivery.body, fallbackID: delivery.properties.messageID)
        }
        let facts = JobIntake.Delivery(
            tag: delivery.deliveryTag, validation: validation,
            submitter: delivery.properties.userID, redelivered: delivery.redelivered)
        switch intake.receive(facts) {
        case .settle(let event, let disposition):
            if case .failure(let rejection) = validation {
                logger.warning("invalid job: \(rejection.message)", metadata: ["job": "\(rejection.id ?? "-")"])
            }
            guard let event else { return try link.settle(delivery.deliveryTag, requeue: disposition == .requeue) }
            // Into the ledger first (attempt 0: it never ran); published once it comes back.
            var record = LedgerRecord(kind: .end, worker: configuration.worker.name, at: clock.wall, id: event.id, attempt: 0)
            record.result = event
            let reply = delivery.properties.replyTo.flatMap { $0.isEmpty ? nil : LedgerState.Reply(replyTo: $0, correlationID: delivery.properties.correlationID) }
            rejections[record.ref] = PendingRejection(deliveryTag: delivery.deliveryTag, event: event, reply: reply)
            try write(record, link: link)
        case .claim(let run, let job, let slot):
            var record = LedgerRecord(kind: .claim, worker: configuration.worker.name, at: clock.wall, id: job.id)
            record.job = String(decoding: delivery.body, as: UTF8.self)
            record.task = job.task.rawValue
            record.replyTo = delivery.properties.replyTo
            record.correlationID = delivery.properties.correlationID
            record.submitter = delivery.properties.userID
            claims[record.ref] = PendingClaim(record: record, run: run, job: job, slot: slot, delivery: delivery, writtenAt: .now)
            try write(record, link: link)
            metrics.slots(busy: intake.busySlots, total: configuration.worker.slots)
        }
    }

    private func start(_ claim: PendingClaim, attempt: Int, link: BrokerLink) {
        let job = claim.job
        let delivery = claim.delivery
        if let sent = delivery.properties.timestamp {
            metrics.queueWait(task: job.task.rawValue, seconds: Date().timeIntervalSince1970 - Double(sent))
        }
        var started = JobEvent(id: job.id, task: job.task.rawValue, event: .started, worker: configuration.worker.name)
        started.startedAt = Date()
        started.redelivered = attempt > 1 || delivery.redelivered
        if configuration.wan.warm { started.warm = true }
        let control = JobControl()
        let run = claim.run
        let redelivered = started.redelivered ?? false
        let devices = configuration.worker.slots > 1 ? String(claim.slot) : nil
        let runner = self.runner
        let inbox = self.inbox
        let logger = self.logger
        let metrics = self.metrics
        let warm = warmRunners.isEmpty ? nil : warmRunners[claim.slot]
        let thread = OwnedThread {
            let event = runner.run(
                job, attempt: attempt, control: control, redelivered: redelivered, devices: devices, logger: logger, warm: warm, metrics: metrics,
                isShuttingDown: { inbox.shutdownMode != nil }
            ) { progress in
                inbox.post(JobUpdate(run: run, kind: .progress(progress)))
            }
            inbox.post(JobUpdate(run: run, kind: .finished(event)))
        }
        runs[run] = ActiveRun(
            job: job, attempt: attempt, control: control, thread: thread, renewedAt: claim.writtenAt, claim: claim.record, carriedAt: claim.writtenAt)
        armWatchdog()
        // After the run exists: a failed publish (the connection is going) must not lose the slot.
        do { try link.publish(started) } catch { logger.warning("started event not sent: \(error)", metadata: ["job": "\(job.id)"]) }
        logger.info("running attempt \(attempt)", metadata: ["job": "\(job.id)"])
    }

    /// A run's progress or end. `link` is nil while disconnected: the result then waits in
    /// ``ends`` for the next connection.
    private func handle(_ update: JobUpdate, link: BrokerLink?) {
        switch update.kind {
        case .progress(let event):
            guard runs[update.run] != nil else { return }
            runs[update.run]!.progress = event
            do { try link?.publish(event) } catch { logger.debug("progress not sent: \(error)") }
        case .finished(let event):
            guard let run = runs.removeValue(forKey: update.run) else { return }
            run.thread.join()
            _ = intake.finished(update.run)
            metrics.slots(busy: intake.busySlots, total: configuration.worker.slots)
            armWatchdog()
            if run.lost {
                logger.warning("run ended after losing its ownership: no result", metadata: ["job": "\(run.job.id)"])
                return
            }
            guard let event else {
                // Requeue on shutdown: give the job back through the ledger.
                guard run.control.stopRequest == .shutdown else { return }
                let record = LedgerRecord(kind: .release, worker: configuration.worker.name, at: clock.wall, id: run.job.id, attempt: run.attempt)
                requeueRefs.insert(record.ref)
                do { try write(record, link: link) } catch { logger.warning("release not written (\(error)); the job goes back when its lease ends") }
                return
            }
            if let elapsed = event.elapsedSeconds { metrics.jobRan(task: run.job.task.rawValue, seconds: elapsed) }
            if event.reason == .cancelledWhileRunning, let heard = run.control.stopRequestedAt {
                metrics.cancelLatency(seconds: (ContinuousClock.now - heard).inSeconds)
            }
            logOutcome(event)
            writeEnd(event, attempt: run.attempt, link: link)
        }
    }

    /// Writes a job's result to the ledger; it is published once it comes back as the job's one result.
    private func writeEnd(_ event: JobEvent, attempt: Int, link: BrokerLink?) {
        var record = LedgerRecord(kind: .end, worker: configuration.worker.name, at: clock.wall, id: event.id, attempt: attempt)
        record.result = event
        ends[record.ref] = (event, attempt)
        do { try write(record, link: link) } catch { logger.warning("result not written yet (\(error)); it goes when the broker is back") }
    }

    /// The job's one result: to the events exchange (so the results queue) and every attached reply_to.
    private func enqueueResult(_ event: JobEvent, replies: [LedgerState.Reply]) {
        metrics.jobFinished(task: event.task, status: event.event, reason: event.reason)
        outbox.append(Outgoing(event: event, destination: .results))
        outbox += replies.map { Outgoing(event: event, destination: .reply($0)) }
    }

    /// Publishes every result due, each destination on its own: a destination that refuses
    /// (basic.nack) never holds up the others, and a confirmed one is never sent again.
    private func flushResults(_ link: BrokerLink) throws {
        let now = ContinuousClock.now
        let due = outbox.indices.filter { outbox[$0].notBefore <= now }
        guard !due.isEmpty else { return }
        let accepted = try link.publishResults(due.map { (outbox[$0].event, outbox[$0].destination) })
        var done = Set<Int>()
        for (index, ok) in zip(due, accepted) {
            let item = outbox[index]
            if ok {
                done.insert(index)
                continue
            }
            switch item.destination {
            case .reply(let reply):
                // The submitter's own queue refused it (full, with reject-publish): retrying
                // would never end. The result stands in the ledger and the results queue.
                logger.error("reply_to \(reply.replyTo) refused the result (basic.nack): dropped", metadata: ["job": "\(item.event.id)"])
                done.insert(index)
            case .results:
                logger.error("the broker refused the result (basic.nack): trying again in 5 s", metadata: ["job": "\(item.event.id)"])
                outbox[index].notBefore = now + .seconds(5)
            }
        }
        outbox = outbox.enumerated().filter { !done.contains($0.offset) }.map(\.element)
    }

    /// Renews every run this worker owns and tells the fleet it is alive (`genworker workers`).
    private func writeHeartbeat(_ link: BrokerLink) throws {
        heartbeatCounter += 1
        nextHeartbeat = .now + renewEvery
        var record = LedgerRecord(kind: .heartbeat, worker: configuration.worker.name, at: clock.wall)
        record.counter = heartbeatCounter
        let live = runs.filter { !$0.value.lost }
        record.runs = live.values.map { HeartbeatRun(id: $0.job.id, attempt: $0.attempt, progress: $0.progress?.progress, step: $0.progress?.step) }
            .sorted { $0.id < $1.id }
        record.slots = configuration.worker.slots
        record.node = link.node
        record.version = GenWorkerVersion.current
        heartbeats = heartbeats.filter { ContinuousClock.now - $0.value.writtenAt < lease }
        heartbeats[record.ref] = (.now, Array(live.keys))
        try link.write(record)
        try carryLongRuns(link)
    }

    /// Writes the claim of every run older than half the ledger window again (`carry`), so a
    /// reader whose window starts after the claim (a worker started later, `genworker status`)
    /// still knows the job: a duplicate attaches instead of running it twice, and the job can
    /// be requeued if this worker dies. Jobs may outlive the window (`jobs.max_timeout_s`).
    private func carryLongRuns(_ link: BrokerLink) throws {
        let every = Duration.seconds(configuration.topology.ledgerRetentionHours * 3600 / 2)
        for (number, run) in runs where !run.lost && ContinuousClock.now - run.carriedAt >= every {
            var record = LedgerRecord(kind: .carry, worker: configuration.worker.name, at: clock.wall, id: run.job.id, attempt: run.attempt)
            record.job = run.claim.job
            record.task = run.claim.task
            record.replyTo = run.claim.replyTo
            record.correlationID = run.claim.correlationID
            record.submitter = run.claim.submitter
            runs[number]?.carriedAt = .now
            try write(record, link: link)
        }
    }

    /// Deliveries are acked when claimed, so the prefetch no longer bounds what a worker
    /// takes: it consumes only while a slot is free.
    private func balanceIntake(_ link: inout BrokerLink) throws {
        if intake.freeSlots.isEmpty, link.jobsConsumer != nil {
            try link.stopConsumingJobs()
        } else if !intake.freeSlots.isEmpty, link.jobsConsumer == nil {
            try link.consumeJobs()
        }
    }

    /// Once caught up: proposes the expiry of every live attempt not renewed for a lease.
    private func expireOverdue(_ link: BrokerLink) throws {
        // A scan of every live attempt: once a second is enough for a lease of seconds or minutes.
        guard caughtUp, ContinuousClock.now >= nextExpiryScan else { return }
        nextExpiryScan = .now + .seconds(1)
        for overdue in ledger.overdue(at: clock.steady, lease: configuration.jobs.leaseSeconds) {
            let key = "\(overdue.id)#\(overdue.attempt)#\(overdue.counter)"
            guard proposedExpiries.insert(key).inserted else { continue }
            var record = LedgerRecord(kind: .expire, worker: configuration.worker.name, at: clock.wall, id: overdue.id, attempt: overdue.attempt)
            record.counter = overdue.counter
            requeueRefs.insert(record.ref)
            logger.warning("attempt \(overdue.attempt) has not been renewed for jobs.lease_s: expiring it", metadata: ["job": "\(overdue.id)"])
            try write(record, link: link)
        }
        if proposedExpiries.count > 10_000 { proposedExpiries.removeAll() }
    }

    /// The owner's own fence: a run whose renewals stopped coming back is stopped before the
    /// lease ends for anyone else (the watchdog kills it outright if this thread cannot).
    private func fence() {
        let now = ContinuousClock.now
        for (number, run) in runs where !run.lost && now - run.renewedAt > fenceAfter {
            runs[number]!.lost = true
            if run.control.requestStop(.ownershipLost) {
                logger.error(
                    "no renewal of this job reached the ledger for \(fenceAfter): stopping the run before its lease ends; another worker will run it",
                    metadata: ["job": "\(run.job.id)"])
            }
        }
    }

    /// Tells the watchdog to kill the generators when the oldest renewal is a lease − lease/20
    /// old: if this worker is frozen (SIGSTOP, a stalled VM), no run outlives its lease.
    private func armWatchdog() {
        let oldest = runs.values.filter { !$0.lost }.map(\.renewedAt).min()
        watchdog?.arm(until: oldest.map { $0 + lease - lease / 20 })
    }

    private func heard(_ id: String, from user: String?) {
        let outcome = intake.cancel(id, by: user)
        for _ in outcome.refused {
            logger.warning(
                "cancel by \(user.map { "'\($0)'" } ?? "an unnamed user") ignored: neither the submitter nor an admin (cancel.authorize)",
                metadata: ["job": "\(id)"])
            metrics.cancelIgnored(reason: "unauthorized")
        }
        for run in outcome.stop where runs[run]?.control.requestStop(.cancelled) == true {
            let by = [user.map { "broker user '\($0)'" }, cancelRequester.map { "'\($0)' through the dashboard" }].compactMap { $0 }
            logger.info("cancel\(by.isEmpty ? "" : " by " + by.joined(separator: ", ")): stopping the running job", metadata: ["job": "\(id)"])
        }
    }

    /// Stops taking jobs; past the drain deadline (or in requeue mode) stops running jobs and
    /// gives them back. Returns true when nothing runs and every result is out.
    private func shutDown(_ requested: ShutdownMode, link: inout BrokerLink) throws -> Bool {
        var mode = requested
        if mode == .drain {
            let deadline = drainDeadline ?? .now + configuration.shutdown.drainTimeout
            drainDeadline = deadline
            if ContinuousClock.now >= deadline {
                if intake.shutdown != .requeue { logger.warning("the drain took longer than shutdown.drain_timeout_s: requeueing what still runs") }
                mode = .requeue
            }
        }
        if inbox.isConsuming {
            try link.stopConsumingJobs()
            setConsuming(false)
            logger.info("shutting down (\(mode.rawValue)): \(runs.count) job(s) running")
        }
        for run in intake.beginShutdown(mode) where runs[run]?.control.requestStop(.shutdown) == true {
            logger.info("shutdown: stopping the job to give it back to the queue", metadata: ["job": "\(runs[run]!.job.id)"])
        }
        guard runs.isEmpty else { return false }
        if claims.isEmpty && ends.isEmpty && rejections.isEmpty && outbox.isEmpty && requeueRefs.isEmpty { return true }
        // Runs are over; what waits on the broker waits a bounded time: a broker that does not
        // answer must not keep a stopping worker alive. Leases then hand its jobs on.
        let giveUpAt = shutdownGiveUpAt ?? .now + configuration.supervisor.grace * 2 + .seconds(10)
        shutdownGiveUpAt = giveUpAt
        guard ContinuousClock.now >= giveUpAt else { return false }
        logger.error(
            "stopping with \(ends.count) result(s), \(outbox.count) publish(es) and \(requeueRefs.count) requeue(s) unconfirmed: the broker did not answer; the jobs go on when their leases end"
        )
        return true
    }

    /// Without a broker at shutdown: stop every run and wait for them (their leases lapse and
    /// other workers take the jobs).
    private func stopAllRuns(_ reason: StopRequest, because why: String) {
        guard !runs.isEmpty else { return }
        logger.warning("stopping \(runs.count) running job(s): \(why)")
        for run in runs.values { run.control.requestStop(reason) }
        while !runs.isEmpty {
            for update in inbox.take() {
                if case .finished = update.kind, let run = runs.removeValue(forKey: update.run) {
                    run.thread.join()
                    _ = intake.finished(update.run)
                }
            }
            if !runs.isEmpty { inbox.wake.wait(timeout: .seconds(1)) }
        }
    }

    private func setConsuming(_ value: Bool) {
        inbox.setConsuming(value)
        metrics.connected(value)
    }

    private func logOutcome(_ event: JobEvent) {
        let text = "\(event.event.rawValue)\(event.reason.map { " (\($0.rawValue))" } ?? "")"
        switch event.reason {
        case .deliveryLimit?: logger.error("\(text): \(event.message ?? "")", metadata: ["job": "\(event.id)"])
        case .cancelledBeforeStart?: logger.info("cancelled before start", metadata: ["job": "\(event.id)"])
        default: logger.info("\(text)", metadata: ["job": "\(event.id)"])
        }
    }
}
