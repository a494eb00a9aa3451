import AMQP
import Foundation
import GenWorkerCore
import Supervision

/// Reads the ledger once, for the CLI (`status`, `jobs`, `workers`, `watch`) and the
/// tests: from the start of the window until a marker written now comes back, folded into
/// a ``LedgerState`` exactly as the workers fold it.
public enum LedgerReader {
    public static func read(
        connection: AMQPConnection, configuration: WorkerConfiguration, since: Date? = nil, timeout: Duration = .seconds(120)
    ) throws -> LedgerState {
        let topology = configuration.topology
        let writers = configuration.ledgerWriters
        let retention = topology.ledgerRetention
        let channel = try connection.openChannel()
        defer { try? channel.close() }
        try LedgerStream.consume(
            on: channel, from: LedgerStream.start(after: nil, since: since, topology: topology), prefetch: 2000, topology: topology)
        let marker = LedgerRecord(kind: .marker, worker: "genworker-cli")
        try LedgerStream.write(marker, on: channel, topology: topology)
        var state = LedgerState(retention: retention)
        let deadline = ContinuousClock.now + timeout
        var sinceAck = 0
        while ContinuousClock.now < deadline {
            switch try connection.nextEvent(timeout: deadline - .now) {
            case .delivery(let delivery)? where delivery.channel == channel.id:
                let entry = LedgerEntry.read(
                    exchange: delivery.exchange, properties: delivery.properties, body: delivery.body, topology: topology,
                    writers: writers, maxBytes: configuration.ledgerRecordLimit)
                let effects = state.apply(entry, at: Date(), live: false)
                sinceAck += 1
                if sinceAck >= 500 {
                    try channel.ack(delivery.deliveryTag, multiple: true)
                    sinceAck = 0
                }
                if effects.contains(.marker(ref: marker.ref)) { return state }
            case .connectionClosed(let error)?:
                throw error
            case .channelClosed(_, let code, let text)?:
                throw GenWorkerError(.brokerFailed, "ledger \(topology.ledgerStream): \(code) \(text)")
            default:
                continue
            }
        }
        throw GenWorkerError(.brokerFailed, "the ledger \(topology.ledgerStream) did not return our marker within \(timeout)")
    }
}
