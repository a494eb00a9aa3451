import AMQP
import Foundation
import GenWorkerCore
import Supervision

/// How every reader and writer of the ledger talks to the stream: where to start reading,
/// how to consume it, how to append a record, and the offset of a delivered message. Used by
/// the worker (`BrokerLink`), the dashboard (`FleetFollower`) and the CLI (`LedgerReader`).
enum LedgerStream {
    /// Where to start: just after `offset` when resuming, else the start of the window
    /// (`since`, or `topology.ledger_retention_h` ago).
    static func start(after offset: Int64?, since: Date? = nil, topology: WorkerConfiguration.TopologySection) -> AMQPFieldValue {
        if let offset { return .int64(offset) }
        let from = since ?? Date().addingTimeInterval(-topology.ledgerRetention)
        return .timestamp(UInt64(max(0, from.timeIntervalSince1970)))
    }

    /// Consumes the ledger on `channel` from `start` (streams need a prefetch and manual acks).
    static func consume(on channel: AMQPChannel, from start: AMQPFieldValue, prefetch: UInt16, topology: WorkerConfiguration.TopologySection)
        throws(AMQPError)
    {
        try channel.qos(prefetchCount: prefetch)
        try channel.consume(queue: topology.ledgerStream, arguments: ["x-stream-offset": start])
    }

    /// Appends `record`, without waiting for a confirm: a record counts when it comes back
    /// through a reader, in its place in the order. It carries the connection's user as
    /// `user_id`, which the broker checks, so readers know which account wrote it
    /// (`topology.ledger_writers`). Returns the publish sequence number.
    @discardableResult
    static func write(_ record: LedgerRecord, on channel: AMQPChannel, topology: WorkerConfiguration.TopologySection) throws -> UInt64 {
        var properties = AMQPProperties(contentType: "application/json", deliveryMode: 2)
        properties.userID = channel.connection.configuration.user
        return try channel.publish(
            exchange: "", routingKey: topology.ledgerStream, body: try ProtocolCoding.encode(record), properties: properties)
    }

    /// The offset to resume from after `delivery` (the one after it).
    static func next(after delivery: AMQPDelivery) -> Int64? {
        delivery.properties.headers?["x-stream-offset"]?.intValue.map { $0 + 1 }
    }
}
