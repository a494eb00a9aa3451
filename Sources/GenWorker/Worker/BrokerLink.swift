import AMQP
import Foundation
import GenWorkerCore
import Logging
import Supervision
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
    /// With publisher confirms: results (to the events exchange and each `reply_to`) and requeues.
    private let confirmed: AMQPChannel
    /// Without confirms: progress events, and ledger records (a record counts when it comes back).
    private let unconfirmed: AMQPChannel
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let metrics: WorkerMetrics
    private(set) var jobsConsumer: String?
    /// The longest the owner thread may block in one broker call (a connect, an RPC, a send, a confirm):
    /// lease/10, at least 2 s, at most what `amqp` configures. A partitioned broker must not
    /// stall the owner past its fence (0.9 × lease − grace); a call that takes longer ends the
    /// connection, and the owner reconnects.
    private let waitBound: Duration

    /// Connects to the node at `url` (waking on `wake`), opens the channels and declares the topology.
    init(url: String, configuration: WorkerConfiguration, wake: WakePipe, logger: Logger, metrics: WorkerMetrics) throws(AMQPError) {
        var amqp = try AMQPConfiguration(url: url)
        amqp.connectionName = amqp.connectionName ?? "genworker \(configuration.worker.name)"
        let bound = max(Duration.seconds(2), Duration.seconds(configuration.jobs.leaseSeconds / 10))
        amqp.connectTimeout = min(amqp.connectTimeout, bound)
        amqp.rpcTimeout = min(amqp.rpcTimeout, bound)
        amqp.sendTimeout = min(amqp.sendTimeout, bound)
        waitBound = min(configuration.amqp.confirmTimeout, bound)
        connection = try AMQPConnection(configuration: amqp, wakeup: wake)
        node = "\(amqp.host):\(amqp.port)"
        let control = try connection.openChannel()
        if configuration.worker.declareTopology { try Topology.declare(on: control, configuration: configuration) }
        confirmed = try connection.openChannel()
        try confirmed.enableConfirms()
        unconfirmed = try connection.openChannel()
        ledger = try connection.openChannel()
        jobs = try connection.openChannel()
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
    }

    /// Appends a record to the ledger (see ``LedgerStream/write(_:on:topology:)``).
    /// A record that cannot be encoded (a result with a non-finite number) is written with
    /// its result stripped to what always encodes, as results are published: dropping it
    /// would leave a claim or an end waiting for ever to come back.
    func write(_ record: LedgerRecord) throws(AMQPError) {
        do { try LedgerStream.write(record, on: unconfirmed, topology: configuration.topology) } catch let error as AMQPError {
            throw error
        } catch {
            logger.error(
                "\(error); writing the ledger \(record.kind.rawValue) record with its result's details left out",
                metadata: ["job": "\(record.id ?? "-")"])
            var bare = record
            bare.result = record.result.map(Self.bare)
            do { try LedgerStream.write(bare, on: unconfirmed, topology: configuration.topology) } catch let error as AMQPError {
                throw error
            } catch {
                logger.error("\(error); ledger record not written")
            }
        }
    }

    /// Starts taking jobs, one unacked at a time. A delivery is acked once its claim is
    /// decided (milliseconds), and the owner stops consuming as soon as no slot is free, so
    /// the broker never pushes a delivery this worker has no slot for: a bounce back to the
    /// queue would be one more count in RabbitMQ 3.x's `x-delivery-count`.
    mutating func consumeJobs() throws(AMQPError) {
        try jobs.qos(prefetchCount: 1)
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
        _ = try unconfirmed.publish(
            exchange: configuration.topology.eventsExchange, routingKey: "\(event.id).\(event.event.rawValue)",
            body: body, properties: AMQPProperties(contentType: "application/json"))
    }

    /// The headers that mark a job message as a worker's requeue, not a submission, and say
    /// which attempt it follows and how many expiries counted (see ``Requeue``).
    private static let requeuedHeader = "x-genworker-requeued"
    private static let attemptHeader = "x-genworker-attempt"
    private static let expiriesHeader = "x-genworker-expiries"
    private static let machineFaultsHeader = "x-genworker-machine-faults"

    /// What a job message's headers say of it: a worker's requeue (and what it follows), or
    /// nil for a submission. The reading side of ``requeue(_:)``.
    static func requeueMark(_ headers: AMQPTable?) -> WorkerStateMachine.RequeueMark? {
        guard headers?[requeuedHeader] == .bool(true) else { return nil }
        return .init(
            after: headers?[attemptHeader]?.intValue.map { Int($0) }, expiries: headers?[expiriesHeader]?.intValue.map { Int($0) },
            machineFaults: headers?[machineFaultsHeader]?.intValue.map { Int($0) })
    }

    /// Puts a job back into the jobs exchange (after an expiry or a release this worker wrote),
    /// with its first submitter's `reply_to`, and waits for the confirm. Marked as a requeue: a
    /// second copy (a confirm lost with the connection sends it again) finds the job running or
    /// ended and answers nobody, since the `reply_to` it carries is the job's own.
    func requeue(_ requeue: Requeue) throws(AMQPError) -> Bool {
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = requeue.id
        properties.headers = [
            Self.requeuedHeader: .bool(true), Self.attemptHeader: .int64(Int64(requeue.after)), Self.expiriesHeader: .int64(Int64(requeue.expiries)),
        ]
        if requeue.machineFaults > 0 { properties.headers?[Self.machineFaultsHeader] = .int64(Int64(requeue.machineFaults)) }
        if let first = requeue.replies.first {
            properties.replyTo = first.replyTo
            properties.correlationID = first.correlationID
        }
        let sequence = try confirmed.publish(
            exchange: configuration.topology.jobsExchange, routingKey: requeue.task ?? "", body: Array(requeue.body.utf8), properties: properties)
        return try confirmed.waitForConfirm(sequence, timeout: waitBound) == .ack
    }

    /// Settles a job message that is not claimed: into the dead-letter queue, or back to the queue.
    func settle(_ deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        if requeue { try jobs.nack(deliveryTag, requeue: true) } else { try jobs.reject(deliveryTag, requeue: false) }
    }

    /// Publishes a terminal event to each destination, then waits for the broker's confirms.
    /// Returns, in order, whether each was accepted (false: `basic.nack`).
    func publishResults(_ outgoing: [(event: JobEvent, to: BrokerDestination)]) throws(AMQPError) -> [Bool] {
        var sequences: [UInt64] = []
        for (event, destination) in outgoing {
            var properties = AMQPProperties.persistentJSON()
            properties.messageID = event.id
            properties.type = event.event.rawValue
            let body = Self.resultBody(event, logger: logger)
            switch destination {
            case .results:
                sequences.append(
                    try confirmed.publish(
                        exchange: configuration.topology.eventsExchange,
                        routingKey: "\(event.id).\(event.event.rawValue)", body: body, properties: properties))
            case .reply(let reply):
                properties.correlationID = reply.correlationID
                sequences.append(try confirmed.publish(exchange: "", routingKey: reply.replyTo, body: body, properties: properties))
            }
        }
        var accepted: [Bool] = []
        for sequence in sequences {
            accepted.append(try confirmed.waitForConfirm(sequence, timeout: waitBound) == .ack)
        }
        return accepted
    }

    private static func resultBody(_ event: JobEvent, logger: Logger) -> [UInt8] {
        do { return try event.encoded() } catch {
            // Only a non-finite number can fail to encode; the result still goes out, without it.
            logger.error("\(error); publishing the result without its details", metadata: ["job": "\(event.id)"])
            return (try? bare(event).encoded()) ?? []
        }
    }

    /// What of a result always encodes: no number that could be non-finite.
    private static func bare(_ event: JobEvent) -> JobEvent {
        var bare = JobEvent(id: event.id, task: event.task, event: event.event, worker: event.worker)
        bare.reason = event.reason
        bare.message = event.message
        bare.output = event.output
        bare.exitCode = event.exitCode
        return bare
    }
}
