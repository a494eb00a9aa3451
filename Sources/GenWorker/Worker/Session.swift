import AMQP
import Foundation
import Logging

/// A job the worker is running.
struct RunningJob {
    let job: JobRequest
    let control: JobControl
    let replyTo: String?
    let correlationID: String?
    let slot: Int
    /// The submitter as the broker vouches for it (AMQP `user_id`), if the job carried one.
    let submitter: String?
}

/// Cancels heard in the last `retention`: live from the cancel fanout, and replayed at
/// start from the cancel stream, so a cancel sent while no worker ran still counts. Each
/// keeps the user the broker vouched for (`user_id`), for `cancel.authorize`.
struct CancelLog {
    let retention: Duration
    private var cancels: [String: [(at: ContinuousClock.Instant, user: String?)]] = [:]
    private var lastPrune = ContinuousClock.now

    init(retention: Duration) { self.retention = retention }

    mutating func insert(_ id: String, user: String?) {
        let now = ContinuousClock.now
        cancels[id, default: []].append((now, user))
        if now - lastPrune > .seconds(60) || cancels.count > 1_000_000 {
            cancels = cancels.compactMapValues { entries in
                let kept = entries.filter { now - $0.at < retention }
                return kept.isEmpty ? nil : kept
            }
            lastPrune = now
        }
    }

    /// Whether a cancel of `id` within the retention came from a user `allowed` accepts.
    func contains(_ id: String, allowed: (String?) -> Bool) -> Bool {
        let now = ContinuousClock.now
        return cancels[id]?.contains { now - $0.at < retention && allowed($0.user) } ?? false
    }
}

/// One connection's life: declare, replay cancels, consume, run, publish. Owned by the worker's owner thread.
/// Used from the owner thread only.
final class Session {
    let worker: Worker
    var configuration: WorkerConfiguration { worker.configuration }
    var logger: Logger { worker.logger }
    private var running: [UInt64: RunningJob] = [:]
    private var cancelLog: CancelLog
    private var freeSlots: [Int]

    init(worker: Worker) {
        self.worker = worker
        cancelLog = CancelLog(retention: .seconds(worker.configuration.topology.cancelRetentionHours * 3600))
        freeSlots = Array(0..<worker.configuration.worker.slots)
    }

    func run() throws {
        let connection = try worker.connect()
        defer { connection.close() }
        let topology = configuration.topology
        let control = try connection.openChannel()
        if configuration.worker.declareTopology {
            try Topology.declare(on: control, configuration: configuration)
        }
        let results = try connection.openChannel()
        try results.enableConfirms()
        let events = try connection.openChannel()
        let cancels = try connection.openChannel()
        try replayCancels(connection: connection, channel: cancels)

        let jobs = try connection.openChannel()
        try jobs.qos(prefetchCount: UInt16(configuration.worker.slots))
        var jobsConsumer: String? = try jobs.consume(queue: topology.jobsQueue)
        worker.setConsuming(true)
        logger.info("consuming \(topology.jobsQueue) with \(configuration.worker.slots) slot(s) as \(configuration.worker.name)")

        while true {
            for update in worker.takeUpdates() {
                switch update.kind {
                case .progress(let event):
                    guard running[update.deliveryTag] != nil else { continue }
                    try events.publish(exchange: topology.eventsExchange, routingKey: "\(event.id).progress",
                                       body: event.encoded(), properties: AMQPProperties(contentType: "application/json"))
                case .finished(let event):
                    try complete(deliveryTag: update.deliveryTag, event: event, jobs: jobs, results: results)
                }
            }
            if let mode = worker.shutdownMode {
                if let tag = jobsConsumer {
                    try jobs.cancel(consumerTag: tag)
                    jobsConsumer = nil
                    worker.setConsuming(false)
                    logger.info("shutting down (\(mode.rawValue)): \(running.count) job(s) running")
                }
                if mode == .requeue {
                    for job in running.values where job.control.requestStop(.shutdown) {
                        logger.info("shutdown: stopping the job to give it back to the queue", metadata: ["job": "\(job.job.id)"])
                    }
                }
                if running.isEmpty { return }
            }
            switch try connection.nextEvent(timeout: .seconds(5)) {
            case .delivery(let delivery)? where delivery.channel == jobs.id:
                try handleJob(delivery, jobs: jobs, events: events, results: results)
            case .delivery(let delivery)? where delivery.channel == cancels.id:
                handleCancel(delivery)
                try cancels.ack(delivery.deliveryTag)
            case .channelClosed(let channel, let code, let text)?:
                if text.contains("delivery acknowledgement") && text.contains("timed out") {
                    logger.error("RabbitMQ's consumer_timeout expired: it closed the jobs channel and requeued the running job(s). Raise consumer_timeout in rabbitmq.conf above jobs.max_timeout_s. Broker said: \(code) \(text)")
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

    /// Consumes the cancel stream from `retention` ago and waits until a marker of ours comes
    /// back through it: every cancel published before we started has then been heard.
    private func replayCancels(connection: AMQPConnection, channel: AMQPChannel) throws {
        let topology = configuration.topology
        try channel.qos(prefetchCount: 1000)
        let since = Date().addingTimeInterval(-Double(topology.cancelRetentionHours) * 3600)
        try channel.consume(queue: topology.cancelStream, arguments: ["x-stream-offset": .timestamp(UInt64(since.timeIntervalSince1970))])
        let marker = "replay-\(UUID().uuidString)"
        try channel.publish(exchange: topology.cancelExchange, routingKey: "", body: Array("{\"marker\":\"\(marker)\"}".utf8),
                            properties: AMQPProperties(contentType: "application/json"))
        let deadline = ContinuousClock.now + .seconds(30)
        var replayed = 0
        while ContinuousClock.now < deadline {
            guard let event = try connection.nextEvent(timeout: .seconds(1)) else { continue }
            switch event {
            case .delivery(let delivery) where delivery.channel == channel.id:
                try channel.ack(delivery.deliveryTag)
                if String(decoding: delivery.body, as: UTF8.self).contains(marker) {
                    logger.info("replayed \(replayed) cancel(s) from \(topology.cancelStream)")
                    return
                }
                if handleCancel(delivery) { replayed += 1 }
            case .connectionClosed(let error):
                throw error
            case .channelClosed(_, let code, let text):
                throw AMQPError(.channelClosed, "cancel stream: \(text)", replyCode: code)
            default:
                continue
            }
        }
        logger.warning("the cancel stream replay did not finish within 30 s; going on")
    }

    /// Records a cancel and stops the job if it runs here. Returns whether the message was a cancel.
    @discardableResult
    private func handleCancel(_ delivery: AMQPDelivery) -> Bool {
        guard let id = JobValidator.cancelID(body: delivery.body) else { return false }
        let user = delivery.properties.userID
        cancelLog.insert(id, user: user)
        for job in running.values where job.job.id == id {
            guard mayCancel(user, submittedBy: job.submitter) else {
                logger.warning("cancel by \(user.map { "'\($0)'" } ?? "an unnamed user") ignored: neither the submitter nor an admin (cancel.authorize)",
                               metadata: ["job": "\(id)"])
                worker.metrics.cancelIgnored(reason: "unauthorized")
                continue
            }
            if job.control.requestStop(.cancelled) {
                logger.info("cancel: stopping the running job", metadata: ["job": "\(id)"])
            }
        }
        return true
    }

    /// With `cancel.authorize`, only the submitter or an admin may cancel, as the broker vouches
    /// for them through `user_id` (RabbitMQ refuses a user_id that is not the connection's user).
    private func mayCancel(_ user: String?, submittedBy submitter: String?) -> Bool {
        guard configuration.cancelAuthorize else { return true }
        guard let user else { return false }
        return user == submitter || configuration.cancelAdmins.contains(user)
    }

    private func handleJob(_ delivery: AMQPDelivery, jobs: AMQPChannel, events: AMQPChannel, results: AMQPChannel) throws {
        let job: JobRequest
        do {
            job = try worker.validator.validate(body: delivery.body, fallbackID: delivery.properties.messageID)
        } catch {
            logger.warning("invalid job: \(error.message)", metadata: ["job": "\(error.id ?? "-")"])
            if let id = error.id {
                var event = JobEvent(id: id, task: error.task, event: .failed, worker: configuration.worker.name)
                event.reason = .invalidJob
                event.message = error.message
                event.redelivered = delivery.redelivered
                guard try publishTerminal(event, replyTo: delivery.properties.replyTo,
                                          correlationID: delivery.properties.correlationID, on: results) else {
                    return try jobs.nack(delivery.deliveryTag, requeue: true)
                }
            }
            // Into the dead-letter queue, never back into the job queue.
            return try jobs.reject(delivery.deliveryTag, requeue: false)
        }
        let submitter = delivery.properties.userID
        // Quorum queues count earlier deliveries that ended without an ack. At the limit the
        // job has killed workers or outlived consumer_timeout that often: it gets a result
        // and goes to the dead-letter queue instead of vanishing there silently.
        if let count = delivery.properties.headers?["x-delivery-count"]?.intValue, count >= configuration.topology.deliveryLimit {
            var event = JobEvent(id: job.id, task: job.task.rawValue, event: .failed, worker: configuration.worker.name)
            event.reason = .deliveryLimit
            event.message = "delivered \(count + 1) times without finishing (the generator kills workers, or the job outlives the broker's consumer_timeout); not run again"
            event.redelivered = true
            logger.error("\(event.message!)", metadata: ["job": "\(job.id)"])
            if try publishTerminal(event, replyTo: delivery.properties.replyTo, correlationID: delivery.properties.correlationID, on: results) {
                try jobs.reject(delivery.deliveryTag, requeue: false)
            } else {
                try jobs.nack(delivery.deliveryTag, requeue: true)
            }
            return
        }
        if cancelLog.contains(job.id, allowed: { mayCancel($0, submittedBy: submitter) }) {
            var event = JobEvent(id: job.id, task: job.task.rawValue, event: .cancelled, worker: configuration.worker.name)
            event.reason = .cancelledBeforeStart
            event.message = "cancelled before it started"
            event.redelivered = delivery.redelivered
            logger.info("cancelled before start", metadata: ["job": "\(job.id)"])
            if try publishTerminal(event, replyTo: delivery.properties.replyTo, correlationID: delivery.properties.correlationID, on: results) {
                try jobs.ack(delivery.deliveryTag)
            } else {
                try jobs.nack(delivery.deliveryTag, requeue: true)
            }
            return
        }
        let slot = freeSlots.isEmpty ? 0 : freeSlots.removeFirst()
        worker.metrics.slots(busy: running.count + 1, total: configuration.worker.slots)
        if let sent = delivery.properties.timestamp {
            worker.metrics.queueWait(task: job.task.rawValue, seconds: Date().timeIntervalSince1970 - Double(sent))
        }
        let control = JobControl()
        running[delivery.deliveryTag] = RunningJob(job: job, control: control, replyTo: delivery.properties.replyTo,
                                                   correlationID: delivery.properties.correlationID, slot: slot, submitter: submitter)
        var started = JobEvent(id: job.id, task: job.task.rawValue, event: .started, worker: configuration.worker.name)
        started.startedAt = Date()
        started.redelivered = delivery.redelivered
        try events.publish(exchange: configuration.topology.eventsExchange, routingKey: "\(job.id).started",
                           body: started.encoded(), properties: AMQPProperties(contentType: "application/json"))
        let worker = self.worker
        let tag = delivery.deliveryTag
        let redelivered = delivery.redelivered
        let devices = configuration.worker.slots > 1 ? String(slot) : nil
        let logger = self.logger
        Thread.detachNewThread {
            let event = worker.runner.run(job, control: control, redelivered: redelivered, devices: devices, logger: logger,
                                          isShuttingDown: { worker.shutdownMode != nil }) { progress in
                worker.post(JobUpdate(deliveryTag: tag, kind: .progress(progress)))
            }
            worker.post(JobUpdate(deliveryTag: tag, kind: .finished(event)))
        }
    }

    /// Publishes a finished job's result (confirmed) and then acks it; or gives it back.
    private func complete(deliveryTag: UInt64, event: JobEvent?, jobs: AMQPChannel, results: AMQPChannel) throws {
        guard let job = running.removeValue(forKey: deliveryTag) else { return }
        freeSlots.append(job.slot)
        worker.metrics.slots(busy: running.count, total: configuration.worker.slots)
        if let event, let elapsed = event.elapsedSeconds { worker.metrics.jobRan(task: job.job.task.rawValue, seconds: elapsed) }
        if event?.reason == .cancelledWhileRunning, let heard = job.control.stopRequestedAt {
            let latency = (ContinuousClock.now - heard).components
            worker.metrics.cancelLatency(seconds: Double(latency.seconds) + Double(latency.attoseconds) / 1e18)
        }
        guard let event else {
            // Requeue on shutdown: the job goes back to the queue for another worker.
            return try jobs.nack(deliveryTag, requeue: true)
        }
        logger.info("\(event.event.rawValue)\(event.reason.map { " (\($0.rawValue))" } ?? "")", metadata: ["job": "\(event.id)"])
        if try publishTerminal(event, replyTo: job.replyTo, correlationID: job.correlationID, on: results) {
            try jobs.ack(deliveryTag)
        } else {
            try jobs.nack(deliveryTag, requeue: true)
        }
    }

    /// Publishes a terminal event to the events exchange (and so to the results queue) and to
    /// `reply_to`, and waits for the broker's confirms. False when the broker refused it.
    private func publishTerminal(_ event: JobEvent, replyTo: String?, correlationID: String?, on channel: AMQPChannel) throws -> Bool {
        defer { worker.metrics.jobFinished(task: event.task, status: event.event, reason: event.reason) }
        let body = event.encoded()
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = event.id
        properties.correlationID = correlationID
        properties.type = event.event.rawValue
        var sequences = [try channel.publish(exchange: configuration.topology.eventsExchange,
                                             routingKey: "\(event.id).\(event.event.rawValue)", body: body, properties: properties)]
        if let replyTo, !replyTo.isEmpty {
            sequences.append(try channel.publish(exchange: "", routingKey: replyTo, body: body, properties: properties))
        }
        var accepted = true
        for sequence in sequences {
            if try channel.waitForConfirm(sequence, timeout: configuration.amqp.confirmTimeout) == .nack { accepted = false }
        }
        if !accepted { logger.error("the broker refused the result (basic.nack); the job goes back to the queue", metadata: ["job": "\(event.id)"]) }
        return accepted
    }

    /// After a connection loss: the broker has requeued our jobs, so stop every local run
    /// (two GPUs must not do the same job) and wait until their processes are gone.
    func abandonRunningJobs() {
        guard !running.isEmpty else { return }
        logger.warning("stopping \(running.count) running job(s): their deliveries are lost and the broker requeued them")
        for job in running.values { job.control.requestStop(.deliveryLost) }
        while !running.isEmpty {
            for update in worker.takeUpdates() {
                guard case .finished = update.kind else { continue }
                if let job = running.removeValue(forKey: update.deliveryTag) { freeSlots.append(job.slot) }
            }
            if !running.isEmpty { Thread.sleep(forTimeInterval: 0.01) }
        }
    }
}
