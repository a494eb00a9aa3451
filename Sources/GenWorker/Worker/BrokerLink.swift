import AMQP
import Foundation
import Logging
import WakePipe

/// One connection's channels, as the owner loop uses them: the jobs consumer, the ledger
/// follower and writer, and the publishing of events and results. Made anew for every
/// connection; used from the owner thread only.
struct BrokerLink {
    let connection: AMQPConnection
    let jobs: AMQPChannel
    let ledger: AMQPChannel
    /// The node this link is connected to, for the heartbeats (`workers`).
    let node: String
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
        node = "\(amqp.host):\(amqp.port)"
        let control = try connection.openChannel()
        if configuration.worker.declareTopology { try Topology.declare(on: control, configuration: configuration) }
        results = try connection.openChannel()
        try results.enableConfirms()
        events = try connection.openChannel()
        ledger = try connection.openChannel()
        jobs = try connection.openChannel()
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
    }

    /// Follows the ledger stream from `offset` (the one after the last record folded), or,
    /// on a first connection, from the start of the retention window.
    func followLedger(from offset: Int64?) throws(AMQPError) {
        let topology = configuration.topology
        try LedgerStream.consume(on: ledger, from: LedgerStream.start(after: offset, topology: topology), prefetch: 1000, topology: topology)
    }

    /// Appends a record to the ledger (see ``LedgerStream/write(_:on:topology:)``).
    func write(_ record: LedgerRecord) throws(AMQPError) {
        do { try LedgerStream.write(record, on: events, topology: configuration.topology) } catch let error as AMQPError {
            throw error
        } catch {
            logger.error("\(error); ledger record not written")
        }
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

    /// Puts a job back into the jobs exchange (after an expiry or a release this worker wrote),
    /// with its first submitter's `reply_to`, and waits for the confirm.
    func requeue(_ requeue: Requeue) throws(AMQPError) -> Bool {
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = requeue.id
        if let first = requeue.replies.first {
            properties.replyTo = first.replyTo
            properties.correlationID = first.correlationID
        }
        let sequence = try results.publish(
            exchange: configuration.topology.jobsExchange, routingKey: requeue.task ?? "", body: Array(requeue.body.utf8), properties: properties)
        return try results.waitForConfirm(sequence, timeout: configuration.amqp.confirmTimeout) == .ack
    }

    /// Settles a job message that is not claimed: the terminal `event` (if any) goes to the
    /// events exchange, and so to the results queue, and to `reply_to`, with publisher
    /// confirms; only then is the message settled with `disposition`. If the broker refuses
    /// the event, the message is requeued instead, so the job is never acked without its result.
    func settle(
        _ deliveryTag: UInt64, event: JobEvent?, replyTo: String?, correlationID: String?,
        disposition: JobIntake.Disposition
    ) throws(AMQPError) {
        var disposition = disposition
        let replies = replyTo.flatMap { $0.isEmpty ? nil : [LedgerState.Reply(replyTo: $0, correlationID: correlationID)] } ?? []
        if let event, try !publishTerminal(event, replies: replies) {
            logger.error("the broker refused the result (basic.nack); the job goes back to the queue", metadata: ["job": "\(event.id)"])
            disposition = .requeue
        }
        switch disposition {
        case .ack: try jobs.ack(deliveryTag)
        case .deadLetter: try jobs.reject(deliveryTag, requeue: false)
        case .requeue: try jobs.nack(deliveryTag, requeue: true)
        }
    }

    /// Publishes a terminal event to the events exchange and to every `reply_to`, and waits
    /// for the broker's confirms. False when refused.
    func publishTerminal(_ event: JobEvent, replies: [LedgerState.Reply], countInMetrics: Bool = true) throws(AMQPError) -> Bool {
        defer { if countInMetrics { metrics.jobFinished(task: event.task, status: event.event, reason: event.reason) } }
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
        properties.type = event.event.rawValue
        var sequences = [
            try results.publish(
                exchange: configuration.topology.eventsExchange,
                routingKey: "\(event.id).\(event.event.rawValue)", body: body, properties: properties)
        ]
        for reply in replies {
            properties.correlationID = reply.correlationID
            sequences.append(try results.publish(exchange: "", routingKey: reply.replyTo, body: body, properties: properties))
        }
        var accepted = true
        for sequence in sequences where try results.waitForConfirm(sequence, timeout: configuration.amqp.confirmTimeout) == .nack {
            accepted = false
        }
        return accepted
    }
}
