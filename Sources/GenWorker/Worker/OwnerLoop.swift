import AMQP
import Foundation
import GenWorkerCore
import Logging
import Supervision
import Synchronization

/// The worker's owner thread: the only code that touches the AMQP connection. It connects
/// (and reconnects with backoff, while its runs go on), reads deliveries and the ledger, and
/// tells ``WorkerStateMachine`` what happened; the machine decides, and this loop carries out
/// its actions (ledger writes, acks, runs started and stopped, results published, the
/// watchdog armed) and nothing else. Every wait is on the connection or the inbox's wake pipe.
final class OwnerLoop {
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let metrics: WorkerMetrics
    private let inbox: WorkerInbox
    private let validator: JobValidator
    private let runner: JobRunner
    private var machine: WorkerStateMachine
    /// The connection being served (nil while there is none).
    private var link: BrokerLink?
    /// What the owner holds of each run the machine started: its stop flag and its thread.
    private var handles: [UInt64: (control: JobControl, thread: OwnedThread)] = [:]
    /// Which node of `amqp.urls` to try first.
    private var nodes: BrokerNodes
    /// One warm runner per slot (`wan.warm`), kept across jobs and reconnects.
    private let warmRunners: [WarmRunner]
    private var watchdog: Watchdog?
    private let clock = WorkerClock()
    /// The offset of the next ledger record to read (resumes the follower after a reconnect).
    /// The ledger as this connection reads it.
    private var ledgerCursor: LedgerCursor?
    private var ledgerOffset: Int64?
    /// Whether the current connection caught up (resets the reconnect backoff when it is lost).
    private var servedSinceLastLoss = false

    /// Where jobs' events go besides AMQP (`webhooks`); nil: no signing secret, webhooks refused.
    private let webhooks: (any WebhookSink)?
    /// The webhooks of jobs this worker took, by id, until their result is out (bounded:
    /// a job taken here may end elsewhere).
    private var hooks: [String: Webhook] = [:]
    /// Each slot's devices (`CUDA_VISIBLE_DEVICES`).
    private let gpus: GPUAssignment
    /// Whose requeue marks count (`topology.ledger_writers`; nil: anyone's): a client that
    /// forges `x-genworker-expiries` or `x-genworker-machine-faults` must not end a job early.
    private let ledgerWriters: Set<String>?

    init(
        configuration: WorkerConfiguration, gpus: GPUAssignment, logger: Logger, metrics: WorkerMetrics, inbox: WorkerInbox,
        webhooks: (any WebhookSink)? = nil
    ) {
        self.configuration = configuration
        self.gpus = gpus
        ledgerWriters = configuration.ledgerWriters
        self.logger = logger
        self.metrics = metrics
        self.inbox = inbox
        self.webhooks = webhooks
        validator = JobValidator(configuration: configuration, acceptsWebhooks: webhooks != nil)
        runner = JobRunner(configuration: configuration)
        machine = WorkerStateMachine(configuration: configuration)
        nodes = BrokerNodes(configuration)
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
                            configuration: configuration, devices: gpus.slots[slot])))
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
                link?.connection.close()
                link = nil
                setConsuming(false)
                logger.error("broker connection ended: \(error)")
                nodes.lost()
                // A connection that served (caught up) starts the backoff afresh: a loss after
                // weeks of uptime must not wait the longest backoff before the first try.
                if servedSinceLastLoss { backoff = .milliseconds(250) }
                servedSinceLastLoss = false
                performDisconnected(machine.connectionLost())
                if inbox.shutdownMode != nil {
                    stopAllRuns()
                    // A result, an end or a requeue the broker has not taken yet is worth
                    // reconnecting for, within the shutdown's patience: stopping now would
                    // leave the job with no result published or no message in the queue
                    // (finding 10 in docs/reliability.md: a restart just after a partition).
                    let giveUp = shutdownGiveUp ?? ContinuousClock.now + machine.settings.shutdownPatience
                    shutdownGiveUp = giveUp
                    guard machine.waitsOnBroker, ContinuousClock.now < giveUp else { break }
                    logger.warning("shutting down with results or requeues the broker has not taken: reconnecting to hand them over")
                }
                logger.info("reconnecting in \(backoff)")
                let end = min(ContinuousClock.now + backoff, shutdownGiveUp ?? .now + backoff)
                while inbox.shutdownMode == nil || shutdownGiveUp != nil, ContinuousClock.now < end {
                    inbox.pulse.beat()
                    performDisconnected(machine.tick(now: now).actions)
                    takeUpdatesDisconnected()
                    inbox.wake.wait(timeout: min(end - .now, .seconds(1)))
                }
                backoff = min(backoff * 2, configuration.amqp.reconnectMax)
            }
        }
        setConsuming(false)
        for runner in warmRunners { runner.shutdown(grace: configuration.supervisor.grace) }
        probe?.join()
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

    /// One connection's life: catch up with the ledger (until the machine's marker comes
    /// back), then serve until shut down with nothing left to do. Throws when the connection
    /// fails, or the catch-up stalls.
    /// Set by a connection lost during a shutdown: until when it reconnects to hand over what waits on the broker.
    private var shutdownGiveUp: ContinuousClock.Instant?

    private func serveConnection() throws {
        let connected = try connectToANode()
        link = connected
        defer {
            link?.connection.close()
            link = nil
            ledgerCursor = nil
        }
        // Follows the ledger from the offset after the last record folded, or, on a first
        // connection, from the start of the window.
        ledgerCursor = try LedgerCursor(channel: connected.ledger, configuration: configuration, resumingAfter: ledgerOffset)
        let started = ContinuousClock.now
        let before = machine.ledger.folded
        try perform(machine.connected(node: connected.node, now: now))
        var reported = false
        // A stream that delivers nothing for this long during the catch-up is stuck (a node
        // just restarted can leave a consumer that never gets a record): connect again.
        let stallLimit = Duration.seconds(10)
        while true {
            inbox.pulse.beat()
            if let mode = inbox.shutdownMode, machine.shutdown != mode, machine.shutdown != .requeue {
                machine.requestShutdown(mode)
                setConsuming(false)
                // During the catch-up nothing of this worker can be pending but its runs.
                if !machine.caughtUp { logger.info("shutting down during the ledger catch-up") }
            }
            if machine.caughtUp, !reported {
                reported = true
                servedSinceLastLoss = true
                let took = (ContinuousClock.now - started).inSeconds
                metrics.ledgerCaughtUp(seconds: took, records: machine.ledger.folded - before)
                // The catch-up decoded the whole window: give the freed heap back to the system.
                ProcessTree.releaseFreeHeap()
                logger.info(
                    "ledger caught up: \(machine.ledger.folded - before) record(s) in \(String(format: "%.3f", took)) s, \(machine.ledger.jobs.count) job(s) in the window"
                )
                if inbox.shutdownMode == nil { setConsuming(true) }
                logger.info(
                    "consuming \(configuration.topology.jobsQueue) with \(configuration.worker.slots) slot(s) as \(configuration.worker.name)")
            }
            if !machine.caughtUp {
                if machine.catchUpStalled(now: now, limit: stallLimit) {
                    throw GenWorkerError(
                        .brokerFailed, "the ledger \(configuration.topology.ledgerStream) delivered nothing for \(stallLimit) during the catch-up")
                }
            }
            // The fence first: a worker waking from a freeze must not publish what it no longer owns.
            let (actions, done) = machine.tick(now: now)
            try perform(actions)
            try probeIfQuarantined()
            try checkOutputsSpace()
            try takeUpdates()
            if done { return }
            let wait = max(machine.nextTick(now: now) - .now, .zero)
            guard let event = try connected.connection.nextEvent(timeout: wait) else {
                try ledgerCursor?.acknowledgeAll()  // the stream is quiet
                continue
            }
            try handle(event)
        }
    }

    /// The quarantine probe: at most one at a time, on a thread of its own (it may take up to
    /// a minute: a broken driver hangs `nvidia-smi` and CUDA's initialisation).
    private var probe: OwnedThread?
    private let probeResult = ProbeResult()
    private var nextProbe: ContinuousClock.Instant?

    /// While quarantined: runs `worker.probe_command` every `probe_every_s` under the
    /// supervisor (a minute at most) and tells the machine whether it passed.
    private func probeIfQuarantined() throws {
        if let healthy = probeResult.take() {
            probe?.join()
            probe = nil
            if !healthy { logger.warning("the quarantine probe failed: still taking no jobs") }
            try perform(machine.probed(healthy: healthy))
        }
        guard machine.quarantined else {
            nextProbe = nil
            return
        }
        // The first probe a period after the quarantine began: the fault that caused it is
        // seconds old, and a probe that passes at once would let the next jobs fail too.
        guard let due = nextProbe else {
            nextProbe = .now + .seconds(configuration.worker.probeEverySeconds)
            return
        }
        guard probe == nil, ContinuousClock.now >= due else { return }
        nextProbe = .now + .seconds(configuration.worker.probeEverySeconds)
        // Every slot's devices: one dead GPU among them keeps the quarantine.
        let spec = WanCommand.probeSpec(configuration: configuration, devices: gpus.slots.compactMap { $0 }.joined(separator: ","))
        let command = [spec.executable] + spec.arguments
        let options = configuration.supervisorOptions
        let (result, wake) = (probeResult, inbox.wake)
        logger.debug("quarantine probe: \(command.joined(separator: " "))")
        probe = OwnedThread {
            let run = Supervisor.run(spec, options: options, control: JobControl(), deadline: .now + .seconds(60))
            result.set(run.termination == .exited(0))
            wake.signal()
        }
    }

    /// When the outputs disk was last measured (`outputs.min_free_mb`).
    private var spaceCheckedAt: ContinuousClock.Instant?

    /// At most every 5 s: statvfs of `outputs.dir`, told to the machine.
    private func checkOutputsSpace() throws {
        let floor = configuration.outputs.minFreeMB
        guard floor > 0, spaceCheckedAt.map({ .now - $0 >= .seconds(5) }) ?? true else { return }
        spaceCheckedAt = .now
        var info = statvfs()
        guard statvfs(configuration.outputs.dir, &info) == 0 else { return }
        let freeMB = Int((UInt64(info.f_bavail) * UInt64(info.f_frsize)) >> 20)
        try perform(machine.outputsSpace(freeMB: freeMB, floorMB: floor))
    }

    private var now: WorkerStateMachine.Now { .init(monotonic: .now, steady: clock.steady, wall: clock.wall) }

    private func handle(_ event: AMQPEvent) throws {
        guard let link else { return }
        switch event {
        case .delivery(let delivery) where delivery.channel == link.jobs.id:
            let validation = Result { () throws(JobRejection) in
                try validator.validate(body: delivery.body, fallbackID: delivery.properties.messageID)
            }
            // The first copy's webhook stays: a duplicate submission must not redirect the result.
            if case .success(let job) = validation, let hook = job.webhook, hooks[job.id] == nil {
                if hooks.count >= 10_000 { hooks.remove(at: hooks.startIndex) }
                hooks[job.id] = hook
            }
            let incoming = WorkerStateMachine.Incoming(
                tag: delivery.deliveryTag, validation: validation, body: String(decoding: delivery.body, as: UTF8.self),
                submitter: delivery.properties.userID, redelivered: delivery.redelivered, replyTo: delivery.properties.replyTo,
                correlationID: delivery.properties.correlationID, sentAt: delivery.properties.timestamp.map(Double.init),
                requeue: ledgerWriters.map { $0.contains(delivery.properties.userID ?? "") } ?? true
                    ? BrokerLink.requeueMark(delivery.properties.headers) : nil)
            try perform(machine.receive(incoming, now: now))
        case .delivery(let delivery) where delivery.channel == link.ledger.id:
            guard let entry = try ledgerCursor?.read(delivery) else { return }
            ledgerOffset = ledgerCursor?.next ?? ledgerOffset
            // A cancel from the dashboard names the person behind it (the broker user is the dashboard's).
            let requestedBy = delivery.properties.headers?["x-genworker-requested-by"]?.stringValue
            try perform(machine.fold(entry, requestedBy: requestedBy, now: now))
        case .channelClosed(let channel, let code, let text):
            if text.contains("delivery acknowledgement") && text.contains("timed out") {
                logger.error("RabbitMQ's consumer_timeout expired on a delivery not yet claimed. Broker said: \(code) \(text)")
            }
            throw GenWorkerError(.brokerFailed, "channel \(channel) closed by the broker: \(code) \(text)")
        case .consumerCancelled(_, let tag):
            throw GenWorkerError(.brokerFailed, "the broker cancelled consumer \(tag) (queue deleted, or its node went down)")
        case .connectionClosed(let error):
            throw error
        case .blocked(let reason):
            logger.warning("the broker blocked publishing: \(reason)")
        case .returned, .unblocked, .woken, .delivery:
            break
        }
    }

    /// The first node that answers (``BrokerNodes``); the fence runs between the tries.
    private func connectToANode() throws -> BrokerLink {
        // Each try may take a connect timeout (lease/10): the fence must not wait for all of them.
        let fence = {
            self.performDisconnected(self.machine.tick(now: self.now).actions)
            self.takeUpdatesDisconnected()
        }
        return try nodes.connect(logger: logger, between: fence) { url in
            try BrokerLink(url: url, configuration: configuration, wake: inbox.wake, logger: logger, metrics: metrics)
        }
    }

    // MARK: - Carrying out decisions

    /// Runs' progress and ends, from their threads. Throws the broker's failure, if any, after
    /// every update was taken.
    private func takeUpdates() throws {
        var failure: Error?
        for update in inbox.take() {
            switch update.kind {
            case .progress(let event):
                do { try perform(machine.runProgress(update.run, event)) } catch { failure = failure ?? error }
            case .finished(let event):
                guard let handle = handles.removeValue(forKey: update.run) else { continue }
                handle.thread.join()
                let latency = handle.control.stopRequestedAt.map { (ContinuousClock.now - $0).inSeconds }
                do { try perform(machine.runFinished(update.run, event: event, cancelLatency: latency, now: now)) } catch {
                    failure = failure ?? error
                }
            }
        }
        if let failure { throw failure }
    }

    /// ``takeUpdates()`` and ``perform(_:)`` with no connection: nothing can fail then.
    private func takeUpdatesDisconnected() {
        do { try takeUpdates() } catch { logger.debug("\(error)") }
    }

    private func performDisconnected(_ actions: [WorkerStateMachine.Action]) {
        do { try perform(actions) } catch { logger.debug("\(error)") }
    }

    /// Carries out `actions` in order. Every action that needs no broker (starting and stopping
    /// runs, files, the watchdog, logs) is carried out whatever happens; after a broker call
    /// fails, the remaining broker calls are skipped (the machine keeps what they would have
    /// sent) and the failure is thrown at the end.
    private func perform(_ actions: [WorkerStateMachine.Action]) throws {
        var failure: Error?
        func broker(_ body: (inout BrokerLink) throws -> Void) {
            guard failure == nil, var current = link else { return }
            do {
                try body(&current)
                link = current
            } catch { failure = error }
        }
        for action in actions {
            switch action {
            case .write(let record):
                broker { try $0.write(record) }
            case .ack(let tag):
                broker { try $0.jobs.ack(tag) }
            case .settle(let tag, let requeue):
                broker { try $0.settle(tag, requeue: requeue) }
            case .publishEvent(let event):
                broker { try $0.publish(event) }
                if let hook = hooks[event.id] { webhooks?.deliver(event, to: hook) }
            case .publishResults(let items):
                var accepted: [Bool]?
                broker { accepted = try $0.publishResults(items.map { ($0.event, $0.destination) }) }
                if let accepted {
                    // The result reached the results queue (the events exchange): now its webhook.
                    for (item, taken) in zip(items, accepted) where taken && item.destination == .results {
                        if let hook = hooks.removeValue(forKey: item.event.id) { webhooks?.deliver(item.event, to: hook) }
                    }
                    do { try perform(machine.resultsPublished(items, accepted: accepted, now: now)) } catch { failure = failure ?? error }
                }
            case .requeue(let requeue):
                var ok: Bool?
                broker { ok = try $0.requeue(requeue) }
                if let ok {
                    do { try perform(machine.requeued(requeue.id, accepted: ok, now: now)) } catch { failure = failure ?? error }
                }
            case .consume(let on):
                broker { on ? try $0.consumeJobs() : try $0.stopConsumingJobs() }
            case .start(let start):
                startRun(start)
            case .stop(let run, let reason):
                handles[run]?.control.requestStop(reason)
            case .promote(let id, let attempt):
                do { try JobRunner.promote(outputs: configuration.outputs.dir, id: id, attempt: attempt) } catch {
                    logger.error("\(error)", metadata: ["job": "\(id)"])
                }
            case .discardRun(let id, let attempt):
                try? FileManager.default.removeItem(atPath: JobRunner.runDirectory(outputs: configuration.outputs.dir, id: id, attempt: attempt))
            case .armWatchdog(let deadline):
                watchdog?.arm(until: deadline)
            case .log(let level, let message, let job):
                logger.log(level: level, "\(message)", metadata: job.map { ["job": "\($0)"] })
            case .metric(let metric):
                record(metric)
            }
        }
        if let failure { throw failure }
    }

    private func startRun(_ start: WorkerStateMachine.RunStart) {
        let job = start.job
        let control = JobControl()
        let run = start.run
        let attempt = start.attempt
        let redelivered = start.redelivered
        let devices = gpus.slots[start.slot]
        let runner = self.runner
        let inbox = self.inbox
        let logger = self.logger
        let metrics = self.metrics
        let warm = warmRunners.isEmpty ? nil : warmRunners[start.slot]
        let thread = OwnedThread {
            let event = runner.run(
                job, attempt: attempt, control: control, redelivered: redelivered, devices: devices, logger: logger, warm: warm, metrics: metrics,
                isShuttingDown: { inbox.shutdownMode != nil }
            ) { progress in
                inbox.post(JobUpdate(run: run, kind: .progress(progress)))
            }
            inbox.post(JobUpdate(run: run, kind: .finished(event)))
        }
        handles[run] = (control, thread)
        // After the run exists: a failed publish (the connection is going) must not lose the slot.
        if let link {
            do { try link.publish(start.started) } catch { logger.warning("started event not sent: \(error)", metadata: ["job": "\(job.id)"]) }
            if let hook = hooks[job.id] { webhooks?.deliver(start.started, to: hook) }
        }
    }

    private func record(_ metric: WorkerStateMachine.Metric) {
        switch metric {
        case .slots(let busy, let total): metrics.slots(busy: busy, total: total)
        case .jobFinished(let event): metrics.jobFinished(task: event.task, status: event.event, reason: event.reason)
        case .jobRan(let task, let seconds): metrics.jobRan(task: task, seconds: seconds)
        case .queueWait(let task, let seconds): metrics.queueWait(task: task, seconds: seconds)
        case .cancelLatency(let seconds): metrics.cancelLatency(seconds: seconds)
        case .cancelIgnored(let reason): metrics.cancelIgnored(reason: reason)
        case .ledgerLag(let seconds): metrics.ledgerLag(seconds: seconds)
        case .ledgerRecordIgnored: metrics.ledgerRecordIgnored()
        case .quarantined(let value):
            metrics.quarantined(value)
            inbox.setQuarantined(value)
        }
    }

    /// Without a broker at shutdown: stop every run and wait for them (their leases lapse and
    /// other workers take the jobs).
    private func stopAllRuns() {
        guard !handles.isEmpty else { return }
        logger.warning("stopping \(handles.count) running job(s): shutting down without a broker; the jobs go back when their leases end")
        performDisconnected(machine.stopAll(.shutdown))
        while !handles.isEmpty {
            inbox.pulse.beat()
            takeUpdatesDisconnected()
            if !handles.isEmpty { inbox.wake.wait(timeout: .seconds(1)) }
        }
    }

    private func setConsuming(_ value: Bool) {
        inbox.setConsuming(value)
        metrics.connected(value)
    }
}

/// The quarantine probe's answer, handed from its thread to the owner loop.
private final class ProbeResult: Sendable {
    private let value = Mutex<Bool?>(nil)
    func set(_ healthy: Bool) { value.withLock { $0 = healthy } }
    func take() -> Bool? {
        value.withLock { box in
            defer { box = nil }
            return box
        }
    }
}
