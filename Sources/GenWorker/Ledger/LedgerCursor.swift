import AMQP
import Foundation
import GenWorkerCore

/// Reading the ledger stream: the one way for the worker, the dashboard's follower and the
/// CLI. It consumes from where the reader resumes (or the start of the window), turns each
/// delivery into a ``LedgerEntry`` (checked against `topology.ledger_writers` and the size
/// limit), remembers the offset to resume from, and acks in batches: on a stream an ack is
/// only credit (a consumer gets at most its prefetch unacked), so one ack per quarter of the
/// prefetch, and the rest when the stream goes quiet (``acknowledgeAll()``).
package struct LedgerCursor {
    package let channel: AMQPChannel
    /// The offset after the last delivery read: where a new consumer resumes.
    package private(set) var next: Int64?
    private let topology: WorkerConfiguration.TopologySection
    private let writers: Set<String>?
    private let maxBytes: Int
    private let ackEvery: Int
    private var unacked: (count: Int, last: UInt64) = (0, 0)

    /// Starts consuming on `channel`: after `offset` when resuming, else from `since` (or the
    /// start of the window).
    package init(
        channel: AMQPChannel, configuration: WorkerConfiguration, resumingAfter offset: Int64?, since: Date? = nil, prefetch: UInt16 = 1000
    ) throws(AMQPError) {
        self.channel = channel
        topology = configuration.topology
        writers = configuration.ledgerWriters
        maxBytes = configuration.ledgerRecordLimit
        ackEvery = max(1, Int(prefetch) / 4)
        next = offset
        try LedgerStream.consume(
            on: channel, from: LedgerStream.start(after: offset, since: since, topology: topology), prefetch: prefetch, topology: topology)
    }

    /// The entry a delivery of this cursor's channel holds.
    package mutating func read(_ delivery: AMQPDelivery) throws(AMQPError) -> LedgerEntry {
        if let after = LedgerStream.next(after: delivery) { next = after }
        unacked = (unacked.count + 1, delivery.deliveryTag)
        if unacked.count >= ackEvery { try acknowledgeAll() }
        return LedgerEntry.read(
            exchange: delivery.exchange, properties: delivery.properties, body: delivery.body, topology: topology, writers: writers,
            maxBytes: maxBytes)
    }

    /// Acks everything read so far (call it when the stream is quiet).
    package mutating func acknowledgeAll() throws(AMQPError) {
        guard unacked.count > 0 else { return }
        try channel.ack(unacked.last, multiple: true)
        unacked = (0, 0)
    }

    /// Whether `entry` is the marker `marker` (the reader's own: it has caught up).
    package static func isMarker(_ entry: LedgerEntry, _ marker: LedgerRecord) -> Bool {
        if case .record(let record) = entry, record.kind == .marker, record.ref == marker.ref { return true }
        return false
    }
}
