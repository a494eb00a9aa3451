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
        let channel = try connection.openChannel()
        defer { try? channel.close() }
        var cursor = try LedgerCursor(channel: channel, configuration: configuration, resumingAfter: nil, since: since, prefetch: 2000)
        let marker = LedgerRecord(kind: .marker, worker: "genworker-cli")
        try LedgerStream.write(marker, on: channel, topology: topology)
        var state = LedgerState(retention: topology.ledgerRetention)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            switch try connection.nextEvent(timeout: deadline - .now) {
            case .delivery(let delivery)? where delivery.channel == channel.id:
                let entry = try cursor.read(delivery)
                _ = state.apply(entry, at: Date(), live: false)
                if LedgerCursor.isMarker(entry, marker) { return state }
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
