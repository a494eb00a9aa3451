import Foundation

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

    package enum CodingKeys: String, CodingKey {
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
