import Foundation

/// A job as the HTTP API shows it (`Job` in the OpenAPI document): one state a client can
/// act on (`queued`, `running`, or the result's `completed` / `failed` / `cancelled`), the
/// attempt and worker, progress, the terminal result, and a timeline from the ledger.
public struct APIJob: Encodable, Sendable, Equatable {
    public struct Progress: Encodable, Sendable, Equatable {
        public var percent: Int?
        public var step: Int?
        public var total: Int?
        public var etaSeconds: Int?
        public var phase: String?

        enum CodingKeys: String, CodingKey {
            case percent, step, total, phase
            case etaSeconds = "eta_s"
        }
    }

    public struct TimelineEntry: Encodable, Sendable, Equatable {
        public var event: String
        public var at: Date?
        public var attempt: Int?
        public var worker: String?
        public var by: String?
    }

    public var id: String
    public var task: String?
    public var state: String
    public var attempt: Int?
    public var worker: String?
    public var submitter: String?
    public var submittedAt: Date?
    public var startedAt: Date?
    public var endedAt: Date?
    public var cancelRequested: Bool
    public var progress: Progress?
    public var result: JobEvent?
    public var timeline: [TimelineEntry]?

    /// Whether the job has its one result.
    public var isTerminal: Bool { state == "completed" || state == "failed" || state == "cancelled" }

    /// `requestedBy`: the dashboard user or API token that submitted it (the broker's
    /// `user_id` is the API's own account); `timeline`: false for list pages.
    public init(_ job: LedgerState.Job, progress event: JobEvent?, requestedBy: String?, timeline withTimeline: Bool = true) {
        id = job.id
        task = job.task
        switch job.state {
        case .queued, .running: state = job.state.rawValue
        case .ended: state = (job.result?.status ?? job.result?.event)?.rawValue ?? "failed"
        }
        let last = job.attempts.last
        attempt = last?.number
        worker = job.result?.worker ?? last?.worker
        submitter = requestedBy ?? job.submitter
        submittedAt = job.submittedAt
        startedAt = job.result?.startedAt ?? last?.claimedAt
        endedAt = job.state == .ended ? (job.result?.endedAt ?? last?.endedAt ?? job.lastChange) : nil
        cancelRequested = !job.cancelledBy.isEmpty
        if job.state == .running, let p = event?.progress ?? job.progress {
            progress = Progress(percent: p.percent, step: p.step, total: p.total, etaSeconds: p.etaSeconds, phase: p.phase ?? event?.step ?? job.step)
        }
        if job.state == .ended {
            var shown = job.result
            if let tail = shown?.logTail { shown?.logTail = Array(tail.suffix(20)) }
            result = shown
        }
        guard withTimeline else { return }
        var entries = [TimelineEntry(event: "submitted", at: job.submittedAt, by: submitter)]
        for attempt in job.attempts {
            entries.append(TimelineEntry(event: "claimed", at: attempt.claimedAt, attempt: attempt.number, worker: attempt.worker))
            if let outcome = attempt.outcome, outcome != .ended {
                entries.append(TimelineEntry(event: outcome.rawValue, at: attempt.endedAt, attempt: attempt.number, worker: attempt.worker))
            }
        }
        // The ledger keeps who cancelled, not when: these entries have no time.
        for user in job.cancelledBy { entries.append(TimelineEntry(event: "cancel_requested", by: user)) }
        if job.state == .ended { entries.append(TimelineEntry(event: "ended", at: endedAt, attempt: attempt, worker: worker)) }
        timeline = entries
    }

    enum CodingKeys: String, CodingKey {
        case id, task, state, attempt, worker, submitter, progress, result, timeline
        case submittedAt = "submitted_at"
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case cancelRequested = "cancel_requested"
    }

    /// Every key, null or not: clients read one shape.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(task, forKey: .task)
        try c.encode(state, forKey: .state)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(worker, forKey: .worker)
        try c.encode(submitter, forKey: .submitter)
        try c.encode(submittedAt, forKey: .submittedAt)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(endedAt, forKey: .endedAt)
        try c.encode(cancelRequested, forKey: .cancelRequested)
        try c.encode(progress, forKey: .progress)
        try c.encode(result, forKey: .result)
        try c.encodeIfPresent(timeline, forKey: .timeline)
    }
}
