import AMQP
import Foundation

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
                throw AMQPError(.channelClosed, "ledger \(topology.ledgerStream): \(text)", replyCode: code)
            default:
                continue
            }
        }
        throw AMQPError(.timeout, "the ledger \(topology.ledgerStream) did not return our marker within \(timeout)")
    }
}

/// A job as `genworker status` and `genworker jobs` print it (docs/protocol.md, "Asking the fleet").
public struct JobStatus: Codable, Sendable, Equatable {
    public var id: String
    public var task: String?
    public var state: LedgerState.JobState
    public var submittedAt: Date?
    /// running: the owner, its attempt and when it started.
    public var worker: String?
    public var attempt: Int?
    public var since: Date?
    public var lastRenewal: Date?
    public var progress: JobProgress?
    public var step: String?
    public var attempts: [LedgerState.Attempt]
    public var cancelRequested: Bool?
    /// ended: the terminal event.
    public var result: JobEvent?

    public init(_ job: LedgerState.Job) {
        id = job.id
        task = job.task
        state = job.state
        submittedAt = job.submittedAt
        attempts = job.attempts
        if let live = job.live {
            worker = live.worker
            attempt = live.number
            since = live.claimedAt
            lastRenewal = job.renewalWrittenAt
            progress = job.progress
            step = job.step
        }
        cancelRequested = job.cancelledBy.isEmpty ? nil : true
        result = job.result
    }

    enum CodingKeys: String, CodingKey {
        case id, task, state, worker, attempt, since, progress, step, attempts, result
        case submittedAt = "submitted_at"
        case lastRenewal = "last_renewal"
        case cancelRequested = "cancel_requested"
    }
}

extension LedgerState {
    /// Known jobs, newest first (submission time).
    public func knownJobs(state: JobState? = nil, since: Date? = nil) -> [Job] {
        jobs.values.filter { $0.known && (state == nil || $0.state == state) && (since == nil || ($0.submittedAt ?? $0.lastChange) >= since!) }
            .sorted { ($0.submittedAt ?? $0.lastChange, $0.id) > ($1.submittedAt ?? $1.lastChange, $1.id) }
    }
}
