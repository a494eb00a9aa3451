import AMQP
import Foundation
import Logging

/// The worker's owner thread: the only code that touches the AMQP connection and the
/// worker's state. It connects (and reconnects with backoff), asks ``JobIntake`` what to do
/// with each delivery, cancel and finished run, and carries the decisions out through
/// ``BrokerLink``. Timers (the drain deadline, the reconnect backoff) live here, and every
/// wait is on the connection or the inbox's wake pipe.
final class OwnerLoop {
    /// A job running on this worker: what the owner needs to stop it, join it and answer.
    private struct ActiveRun {
        let job: JobRequest
        let control: JobControl
        let thread: OwnedThread
        let replyTo: String?
        let correlationID: String?
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

    init(configuration: WorkerConfiguration, logger: Logger, metrics: WorkerMetrics, inbox: WorkerInbox) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.inbox = inbox
        validator = JobValidator(configuration: configuration)
        runner = JobRunner(configuration: configuration)
        intake = JobIntake(configuration: configuration)
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

    /// Until shutdown: connect, serve, and after a loss stop local runs and reconnect.
    func run() {
        metrics.registerAtStart(slots: configuration.worker.slots, tasks: configuration.worker.tasks)
        let watchdog = prepareProcesses()
        defer { watchdog?.stop() }
        var backoff = Duration.milliseconds(250)
        while inbox.shutdownMode == nil {
            do {
                try serveConnection()
                backoff = .milliseconds(250)
            } catch {
                setConsuming(false)
                logger.error("broker connection ended: \(error)")
                nodeIndex += 1  // a lost node is tried last
                abandonRuns()
                guard inbox.shutdownMode == nil else { break }
                logger.info("reconnecting in \(backoff)")
                let end = ContinuousClock.now + backoff
                while inbox.shutdownMode == nil, ContinuousClock.now < end { inbox.wake.wait(timeout: end - .now) }
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

    /// One connection's life. Returns when shut down with no job left; throws when the connection fails.
    private func serveConnection() throws {
        var link = try connectToANode()
        defer { link.connection.close() }
        try link.replayCancels { cancel, user in self.heard(cancel, from: user) }
        if inbox.shutdownMode == nil {
            try link.consumeJobs()
            setConsuming(true)
            logger.info("consuming \(configuration.topology.jobsQueue) with \(configuration.worker.slots) slot(s) as \(configuration.worker.name)")
        }
        while true {
            for update in inbox.take() { try handle(update, link: link) }
            if let mode = inbox.shutdownMode, try shutDown(mode, link: &link) { return }
            var wait = Duration.seconds(5)
            if let drainDeadline { wait = min(wait, max(drainDeadline - .now, .zero)) }
            switch try link.connection.nextEvent(timeout: wait) {
            case .delivery(let delivery)? where delivery.channel == link.jobs.id:
                try receive(delivery, link: link)
            case .delivery(let delivery)? where delivery.channel == link.cancels.id:
                if let cancel = CancelMessage.read(delivery.body) { heard(cancel, from: delivery.properties.userID) }
                try link.cancels.ack(delivery.deliveryTag)
            case .channelClosed(let channel, let code, let text)?:
                if text.contains("delivery acknowledgement") && text.contains("timed out") {
                    logger.error(
                        "RabbitMQ's consumer_timeout expired: it closed the jobs channel and requeued the running job(s). Raise consumer_timeout in rabbitmq.conf above jobs.max_timeout_s. Broker said: \(code) \(text)"
                    )
                }
                throw AMQPError(.channelClosed, "channel \(channel) closed by the broker: \(text)", replyCode: code)
            case .consumerCancelled(_, let tag)?:
                throw AMQPError(.invalidState, "the broker cancelled consumer \(tag) (queue deleted?)")
            case .connectionClosed(let error)?:
                throw error
            case .blocked(let reason)?:
                logger.warning("the broker blocked publishing: \(reason)")
            case .returned, .unblocked, .woken, .delivery, nil:
                continue
            }
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
            deliveryCount: delivery.properties.headers?["x-delivery-count"]?.intValue.map { Int(clamping: $0) },
            submitter: delivery.properties.userID, redelivered: delivery.redelivered)
        switch intake.receive(facts, at: .now) {
        case .settle(let event, let disposition):
            if case .failure(let rejection) = validation {
                logger.warning("invalid job: \(rejection.message)", metadata: ["job": "\(rejection.id ?? "-")"])
            } else if let event {
                logOutcome(event)
            }
            try link.settle(
                delivery.deliveryTag, event: event, replyTo: delivery.properties.replyTo,
                correlationID: delivery.properties.correlationID, disposition: disposition)
        case .run(let job, let slot):
            try start(job, slot: slot, delivery: delivery, link: link)
        }
    }

    private func start(_ job: JobRequest, slot: Int, delivery: AMQPDelivery, link: BrokerLink) throws {
        metrics.slots(busy: intake.busySlots, total: configuration.worker.slots)
        if let sent = delivery.properties.timestamp {
            metrics.queueWait(task: job.task.rawValue, seconds: Date().timeIntervalSince1970 - Double(sent))
        }
        var started = JobEvent(id: job.id, task: job.task.rawValue, event: .started, worker: configuration.worker.name)
        started.startedAt = Date()
        started.redelivered = delivery.redelivered
        if configuration.wan.warm { started.warm = true }
        try link.publish(started)
        let control = JobControl()
        let tag = delivery.deliveryTag
        let redelivered = delivery.redelivered
        let devices = configuration.worker.slots > 1 ? String(slot) : nil
        let runner = self.runner
        let inbox = self.inbox
        let logger = self.logger
        let metrics = self.metrics
        let warm = warmRunners.isEmpty ? nil : warmRunners[slot]
        let thread = OwnedThread {
            let event = runner.run(
                job, control: control, redelivered: redelivered, devices: devices, logger: logger, warm: warm, metrics: metrics,
                isShuttingDown: { inbox.shutdownMode != nil }
            ) { progress in
                inbox.post(JobUpdate(deliveryTag: tag, kind: .progress(progress)))
            }
            inbox.post(JobUpdate(deliveryTag: tag, kind: .finished(event)))
        }
        runs[tag] = ActiveRun(
            job: job, control: control, thread: thread, replyTo: delivery.properties.replyTo,
            correlationID: delivery.properties.correlationID)
    }

    private func handle(_ update: JobUpdate, link: BrokerLink) throws {
        switch update.kind {
        case .progress(let event):
            guard runs[update.deliveryTag] != nil else { return }
            try link.publish(event)
        case .finished(let event):
            guard let run = end(update.deliveryTag) else { return }
            if let event, let elapsed = event.elapsedSeconds { metrics.jobRan(task: run.job.task.rawValue, seconds: elapsed) }
            if event?.reason == .cancelledWhileRunning, let heard = run.control.stopRequestedAt {
                let latency = (ContinuousClock.now - heard).components
                metrics.cancelLatency(seconds: Double(latency.seconds) + Double(latency.attoseconds) / 1e18)
            }
            if let event { logOutcome(event) }
            // No event: the worker requeues it on shutdown; the job goes back for another worker.
            try link.settle(
                update.deliveryTag, event: event, replyTo: run.replyTo, correlationID: run.correlationID,
                disposition: event == nil ? .requeue : .ack)
        }
    }

    /// A run's thread has posted its end: join it and free its slot.
    private func end(_ tag: UInt64) -> ActiveRun? {
        guard let run = runs.removeValue(forKey: tag) else { return nil }
        run.thread.join()
        _ = intake.finished(tag)
        metrics.slots(busy: intake.busySlots, total: configuration.worker.slots)
        return run
    }

    private func heard(_ cancel: CancelMessage, from user: String?) {
        let outcome = intake.cancel(cancel.id, by: user, at: .now)
        for _ in outcome.refused {
            logger.warning(
                "cancel by \(user.map { "'\($0)'" } ?? "an unnamed user") ignored: neither the submitter nor an admin (cancel.authorize)",
                metadata: ["job": "\(cancel.id)"])
            metrics.cancelIgnored(reason: "unauthorized")
        }
        for tag in outcome.stop where runs[tag]?.control.requestStop(.cancelled) == true {
            logger.info("cancel: stopping the running job", metadata: ["job": "\(cancel.id)"])
        }
    }

    /// Stops taking jobs; past the drain deadline (or in requeue mode) stops running jobs so
    /// they go back to the queue. Returns true when nothing runs any more.
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
        if link.jobsConsumer != nil {
            try link.stopConsumingJobs()
            setConsuming(false)
            logger.info("shutting down (\(mode.rawValue)): \(runs.count) job(s) running")
        }
        for tag in intake.beginShutdown(mode) where runs[tag]?.control.requestStop(.shutdown) == true {
            logger.info("shutdown: stopping the job to give it back to the queue", metadata: ["job": "\(runs[tag]!.job.id)"])
        }
        return runs.isEmpty
    }

    /// After a connection loss: the broker has requeued our jobs, so stop every local run
    /// (two GPUs must not do the same job) and wait, on the wake pipe, until they have ended.
    private func abandonRuns() {
        guard !runs.isEmpty else { return }
        logger.warning("stopping \(runs.count) running job(s): their deliveries are lost and the broker requeued them")
        for tag in intake.connectionLost() { runs[tag]?.control.requestStop(.deliveryLost) }
        while !runs.isEmpty {
            for update in inbox.take() {
                if case .finished = update.kind { _ = end(update.deliveryTag) }
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
