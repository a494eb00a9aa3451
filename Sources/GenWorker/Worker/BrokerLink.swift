import AMQP
import Foundation
import Logging
import WakePipe

/// One connection's channels, as the owner loop uses them, and the one path by which a
/// job message is settled: ``settle(_:event:replyTo:correlationID:disposition:)``. Made
/// anew for every connection; used from the owner thread only.
struct BrokerLink {
    let connection: AMQPConnection
    let jobs: AMQPChannel
    let cancels: AMQPChannel
    private let results: AMQPChannel
    private let events: AMQPChannel
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let metrics: WorkerMetrics
    private(set) var jobsConsumer: String?

    /// Connects to the node at `url` (waking on `wake`), opens the channels and declares the topology.
    init(url: String, configuration: WorkerConfiguration, wake: WakePipe, logger: Logger, metrics: WorkerMetrics) throws(AMQPError) {
        var amqp = try AMQPConfiguration(url: url)
        amqp.connectionName = amqp.connectionName ?? "genworker \(configuration.worker.name)"
        connection = try AMQPConnection(configuration: amqp, wakeup: wake)
        let control = try connection.openChannel()
        if configuration.worker.declareTopology { try Topology.declare(on: control, configuration: configuration) }
        results = try connection.openChannel()
        try results.enableConfirms()
        events = try connection.openChannel()
        cancels = try connection.openChannel()
        jobs = try connection.openChannel()
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
    }

    /// Consumes the cancel stream from `cancel_retention_h` ago and waits until a marker of
    /// ours comes back through it: every cancel published before we started has then been
    /// heard. Then keeps consuming it for live cancels. `heard` gets each cancel.
    func replayCancels(_ heard: (CancelMessage, _ user: String?) -> Void) throws {
        let topology = configuration.topology
        try cancels.qos(prefetchCount: 1000)
        let since = Date().addingTimeInterval(-Double(topology.cancelRetentionHours) * 3600)
        try cancels.consume(queue: topology.cancelStream, arguments: ["x-stream-offset": .timestamp(UInt64(since.timeIntervalSince1970))])
        let marker = CancelReplayMarker(marker: "replay-\(UUID().uuidString)")
        try cancels.publish(
            exchange: topology.cancelExchange, routingKey: "", body: try ProtocolCoding.encode(marker),
            properties: AMQPProperties(contentType: "application/json"))
        let deadline = ContinuousClock.now + .seconds(30)
        var replayed = 0
        while ContinuousClock.now < deadline {
            guard let event = try connection.nextEvent(timeout: deadline - ContinuousClock.now) else { continue }
            switch event {
            case .delivery(let delivery) where delivery.channel == cancels.id:
                try cancels.ack(delivery.deliveryTag)
                if CancelReplayMarker.read(delivery.body) == marker {
                    logger.info("replayed \(replayed) cancel(s) from \(topology.cancelStream)")
                    return
                }
                if let cancel = CancelMessage.read(delivery.body) {
                    heard(cancel, delivery.properties.userID)
                    replayed += 1
                }
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

    /// Starts taking jobs, at most `worker.slots` unacked at once.
    mutating func consumeJobs() throws(AMQPError) {
        try jobs.qos(prefetchCount: UInt16(configuration.worker.slots))
        jobsConsumer = try jobs.consume(queue: configuration.topology.jobsQueue)
    }

    /// Stops taking jobs (shutdown); deliveries already on their way still arrive.
    mutating func stopConsumingJobs() throws(AMQPError) {
        guard let tag = jobsConsumer else { return }
        try jobs.cancel(consumerTag: tag)
        jobsConsumer = nil
    }

    /// Publishes a non-terminal event (`started`, `progress`) without waiting for a confirm.
    func publish(_ event: JobEvent) throws(AMQPError) {
        let body: [UInt8]
        do { body = try event.encoded() } catch {
            return logger.error("\(error); event not sent", metadata: ["job": "\(event.id)"])
        }
        _ = try events.publish(
            exchange: configuration.topology.eventsExchange, routingKey: "\(event.id).\(event.event.rawValue)",
            body: body, properties: AMQPProperties(contentType: "application/json"))
    }

    /// The one way a job message ends here: the terminal `event` (if any) goes to the events
    /// exchange, and so to the results queue, and to `reply_to`, with publisher confirms;
    /// only then is the message settled with `disposition`. If the broker refuses the event,
    /// the message is requeued instead, so the job is never acked without its result.
    func settle(
        _ deliveryTag: UInt64, event: JobEvent?, replyTo: String?, correlationID: String?,
        disposition: JobIntake.Disposition
    ) throws(AMQPError) {
        var disposition = disposition
        if let event, try !publishTerminal(event, replyTo: replyTo, correlationID: correlationID) {
            logger.error("the broker refused the result (basic.nack); the job goes back to the queue", metadata: ["job": "\(event.id)"])
            disposition = .requeue
        }
        switch disposition {
        case .ack: try jobs.ack(deliveryTag)
        case .deadLetter: try jobs.reject(deliveryTag, requeue: false)
        case .requeue: try jobs.nack(deliveryTag, requeue: true)
        }
    }

    /// Publishes a terminal event and waits for the broker's confirms. False when refused.
    private func publishTerminal(_ event: JobEvent, replyTo: String?, correlationID: String?) throws(AMQPError) -> Bool {
        defer { metrics.jobFinished(task: event.task, status: event.event, reason: event.reason) }
        let body: [UInt8]
        do { body = try event.encoded() } catch {
            // Only a non-finite number can fail to encode; the result still goes out, without it.
            logger.error("\(error); publishing the result without its details", metadata: ["job": "\(event.id)"])
            var bare = JobEvent(id: event.id, task: event.task, event: event.event, worker: event.worker)
            bare.reason = event.reason
            bare.message = event.message
            body = (try? bare.encoded()) ?? []
        }
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = event.id
        properties.correlationID = correlationID
        properties.type = event.event.rawValue
        var sequences = [
            try results.publish(
                exchange: configuration.topology.eventsExchange,
                routingKey: "\(event.id).\(event.event.rawValue)", body: body, properties: properties)
        ]
        if let replyTo, !replyTo.isEmpty {
            sequences.append(try results.publish(exchange: "", routingKey: replyTo, body: body, properties: properties))
        }
        var accepted = true
        for sequence in sequences where try results.waitForConfirm(sequence, timeout: configuration.amqp.confirmTimeout) == .nack {
            accepted = false
        }
        return accepted
    }
}
