import AMQPTypes
import Foundation

/// What a worker writes to the fleet's ledger (`topology.ledger_stream`, a RabbitMQ
/// stream): claims, heartbeats (which renew every job the worker runs), expiries, releases,
/// ends and catch-up markers. Submissions and cancels reach the ledger through bindings
/// of the jobs exchange and the cancel fanout; ``LedgerEntry`` reads all of them.
/// docs/architecture.md ("The ledger") explains the rules; docs/protocol.md the format.
public struct LedgerRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// "I take job `id`, attempt `attempt`": the first claim while no attempt is live wins;
        /// a later one attaches its `reply_to` to the job.
        case claim
        /// A worker is alive; every run it lists (`runs`) is renewed.
        case heartbeat
        /// "Attempt `attempt` of `id` was last renewed by heartbeat `counter` and is older than
        /// the lease": valid when no later renewal stands before it. Its author requeues the job.
        case expire
        /// The owner gives a job back (shutdown in requeue mode): like an expiry, not counted as a failed attempt.
        case release
        /// The terminal result of `id` (`result`); the first valid one is the job's one result.
        case end
        /// Written and read back to know every earlier record has been seen.
        case marker
        /// The owner of a run older than half the window writes its claim again (`id`,
        /// `attempt`, `job`, `task`, `reply_to`, `correlation_id`, `submitter`), so a reader
        /// whose window starts after the claim still knows the job and can requeue it.
        case carry
    }

    /// The ledger format's version (also what tells a record from a client's job body).
    public var ledger = 1
    public var kind: Kind
    public var worker: String
    public var at: Date
    /// The writer's name for this record, to recognise it when it comes back.
    public var ref: String
    public var id: String?
    public var attempt: Int?
    /// heartbeat: the worker's counter; expire: the last renewal counter its author saw.
    public var counter: Int?
    /// heartbeat: which life of the worker wrote it (a new value each process start): an
    /// expired attempt whose owner's same life renews again was cut off, not crashed.
    public var life: String?
    /// claim of a requeued message: the attempt it follows and the expiries counted so far
    /// (the requeue's headers), so a reader that did not see those attempts numbers this one
    /// as the others do.
    public var requeuedAfter: Int?
    /// claim of a requeued message: the machine-fault releases it carried (``Requeue/machineFaults``).
    public var machineFaults: Int?
    public var expiries: Int?
    /// carry: every `reply_to` attached to the run (duplicates' included).
    public var replies: [LedgerState.Reply]?
    /// claim: the job message as delivered (JSON text), so an expiry can requeue it.
    public var job: String?
    public var task: String?
    public var replyTo: String?
    public var correlationID: String?
    /// claim: the submitter as the broker vouched for it (`user_id`).
    public var submitter: String?
    public var result: JobEvent?
    /// heartbeat: the jobs the worker runs, with their latest progress.
    public var runs: [HeartbeatRun]?
    public var slots: Int?
    /// heartbeat: true while the worker takes no jobs because they keep failing for its sake (`worker.quarantine_after`).
    public var quarantined: Bool?
    /// release: why the job was given back, when a failure (``JobReason/isMachineFault``), not
    /// a shutdown, gave it back; counted in ``LedgerState/Job/machineFaults``.
    /// A string, not a ``JobReason``: a reason a later version adds must not make this
    /// version drop the whole record (its fold would then disagree with the fleet's).
    public var reason: String?
    public var node: String?
    public var version: String?

    public init(kind: Kind, worker: String, at: Date = Date(), ref: String = UUID().uuidString, id: String? = nil, attempt: Int? = nil) {
        self.kind = kind
        self.worker = worker
        self.at = at
        self.ref = ref
        self.id = id
        self.attempt = attempt
    }

    package enum CodingKeys: String, CodingKey {
        case ledger, kind, worker, at, ref, id, attempt, counter, life, expiries, replies, job, task, submitter, result, runs, slots, quarantined,
            reason,
            node, version
        case requeuedAfter = "requeued_after"
        case machineFaults = "machine_faults"
        case replyTo = "reply_to"
        case correlationID = "correlation_id"
    }
}

/// One run as a heartbeat lists it.
public struct HeartbeatRun: Codable, Sendable, Equatable {
    public var id: String
    public var attempt: Int
    public var progress: JobProgress?
    public var step: String?

    public init(id: String, attempt: Int, progress: JobProgress? = nil, step: String? = nil) {
        self.id = id
        self.attempt = attempt
        self.progress = progress
        self.step = step
    }
}

/// One message of the ledger stream, read.
public enum LedgerEntry: Sendable, Equatable {
    /// A job published to the jobs exchange (by a client, or requeued by a worker).
    case submitted(id: String, task: String?, submitter: String?, at: Date?)
    /// A cancel published to the cancel fanout.
    case cancelled(id: String, user: String?)
    case record(LedgerRecord)
    /// A record written by an account that may not write the ledger (`topology.ledger_writers`): ignored.
    case forged(LedgerRecord, user: String?)
    /// Anything else (a cancel-stream replay marker, garbage): skipped.
    case other

    /// Reads a message delivered from the ledger stream. A record counts only if the broker
    /// vouched (`user_id`) that one of `writers` wrote it (nil: anyone); a marker counts from
    /// anyone (it tells only its own reader that it has caught up).
    /// `maxBytes`: larger messages are skipped unread (``WorkerConfiguration/ledgerRecordLimit``).
    public static func read(
        exchange: String, properties: AMQPProperties, body: [UInt8], topology: WorkerConfiguration.TopologySection, writers: Set<String>?,
        maxBytes: Int = 8 << 20
    ) -> LedgerEntry {
        guard body.count <= maxBytes else { return .other }
        if exchange == topology.cancelExchange {
            return CancelMessage.read(body).map { .cancelled(id: $0.id, user: properties.userID) } ?? .other
        }
        if exchange == topology.jobsExchange {
            guard let head = try? ProtocolCoding.decode(JobHead.self, from: body), JobValidator.isValidID(head.id) else { return .other }
            return .submitted(
                id: head.id, task: head.task, submitter: properties.userID, at: properties.timestamp.map { Date(timeIntervalSince1970: Double($0)) })
        }
        guard let record = try? ProtocolCoding.decode(LedgerRecord.self, from: body) else { return .other }
        if let writers, record.kind != .marker, !(properties.userID.map(writers.contains) ?? false) {
            return .forged(record, user: properties.userID)
        }
        return .record(record)
    }

    /// The fields of a job body the ledger keeps from a submission.
    private struct JobHead: Decodable {
        var id: String
        var task: String?
    }
}
