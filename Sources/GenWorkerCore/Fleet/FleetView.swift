import Foundation
import Synchronization

/// What the dashboard knows of the fleet: the ledger folded (``LedgerState``, bounded by the
/// retention window and `dashboard.max_jobs`), each running job's latest progress event,
/// each job's params, queue depths, and who is watching (server-sent events). Rebuilt from
/// the ledger at start, so a restart forgets nothing the ledger holds. Shared by the
/// follower thread (writes) and the HTTP handlers (reads, subscriptions).
public final class FleetView: Sendable {
    package struct State {
        package var ledger: LedgerState
        package var progress: [String: JobEvent] = [:]
        /// When each running job's progress last moved, on this side's clock.
        package var progressSeen: [String: Date] = [:]
        package var params: [String: JobMessage] = [:]
        /// Who submitted a job through the dashboard (the `x-genworker-requested-by` header).
        package var requestedBy: [String: String] = [:]
        package var queues: [String: UInt32] = [:]
        package var connected = false
        /// The newest record folded and when: the ledger lag is now − this.
        package var lastRecordAt: Date?
        package var folded = 0
    }

    package let maxJobs: Int
    private let state: Mutex<State>
    private let subscribers = Mutex<[UUID: AsyncStream<String>.Continuation]>([:])
    private let finishing = Atomic<Bool>(false)

    /// True once the server stops (``finishAll()``): long polls and event streams end.
    public var isFinishing: Bool { finishing.load(ordering: .acquiring) }

    public init(retention: TimeInterval, maxJobs: Int) {
        self.maxJobs = maxJobs
        state = Mutex(State(ledger: LedgerState(retention: retention)))
    }

    // MARK: - Writes (the follower)

    /// Folds one ledger entry; tells the watchers what changed. `params` is the job message
    /// of a submission, kept for the job's page.
    package func fold(_ entry: LedgerEntry, params: JobMessage?, requestedBy: String? = nil, at now: Date, live: Bool) {
        let changed: String? = state.withLock { state in
            _ = state.ledger.apply(entry, at: now, live: live)
            state.folded += 1
            state.lastRecordAt = now
            var id: String?
            switch entry {
            case .submitted(let submitted, _, _, _):
                id = submitted
                if let params, state.params[submitted] == nil { state.params[submitted] = params }
                if let requestedBy, state.requestedBy[submitted] == nil { state.requestedBy[submitted] = requestedBy }
            case .cancelled(let cancelled, _): id = cancelled
            case .record(let record):
                id = record.id
                // An end, or an attempt over (expired, released: given back): the bar was that
                // attempt's, not the next one's.
                if [.end, .expire, .release].contains(record.kind), let over = record.id, state.ledger.jobs[over]?.state != .running {
                    state.progress[over] = nil
                    state.progressSeen[over] = nil
                }
            case .other, .forged: break
            }
            if state.ledger.jobs.count > maxJobs + maxJobs / 10 { trim(&state) }
            return id
        }
        // Nobody watching (the catch-up at start, usually): nothing to encode.
        if let changed, watchers > 0, let json = summaryJSON(changed) { broadcast(json) }
    }

    /// A progress event from the events exchange: the bar moves.
    package func progress(_ event: JobEvent) {
        state.withLock { state in
            guard state.ledger.jobs[event.id]?.state != .ended else { return }
            if state.progress[event.id]?.progress != event.progress || state.progress[event.id]?.step != event.step {
                state.progressSeen[event.id] = Date()
            }
            state.progress[event.id] = event
        }
        if watchers > 0, let json = summaryJSON(event.id) { broadcast(json) }
    }

    /// The dashboard user who submitted `id`, if one did.
    public func requester(of id: String) -> String? { state.withLock { $0.requestedBy[id] } }

    package func noteRequester(_ id: String, _ user: String) {
        state.withLock { state in if state.requestedBy[id] == nil { state.requestedBy[id] = user } }
    }

    package func setQueues(_ depths: [String: UInt32]) { state.withLock { $0.queues = depths } }

    package func setConnected(_ connected: Bool) { state.withLock { $0.connected = connected } }

    /// Over `dashboard.max_jobs`: the oldest ended jobs go (running and queued ones stay).
    private func trim(_ state: inout State) {
        let ended = state.ledger.jobs.values.filter { $0.state == .ended }.sorted { $0.lastChange < $1.lastChange }
        let excess = state.ledger.jobs.count - maxJobs
        guard excess > 0 else { return }
        let drop = ended.prefix(excess).map(\.id)
        state.ledger.forget(drop)
        for id in drop {
            state.params[id] = nil
            state.requestedBy[id] = nil
        }
    }

    // MARK: - Reads (the HTTP handlers)

    /// Jobs newest first, filtered: `state` (queued, running, ended, or a terminal status),
    /// `task`, `worker`, and `text` (in the id or the prompt).
    public func jobs(state wanted: String? = nil, task: String? = nil, worker: String? = nil, text: String? = nil, limit: Int = 200)
        -> [JobSummary]
    {
        // A snapshot under the lock (the dictionaries are copy-on-write: O(1) here); the sort
        // and the filters run outside it, so the follower's thread never waits on a page.
        let (ledger, progress, params) = state.withLock { ($0.ledger, $0.progress, $0.params) }
        do {
            var out: [JobSummary] = []
            for job in ledger.knownJobs() {
                let summary = JobSummary(job, progress: progress[job.id], params: params[job.id])
                if let wanted, !wanted.isEmpty, summary.state != wanted, summary.status != wanted { continue }
                if let task, !task.isEmpty, summary.task != task { continue }
                if let worker, !worker.isEmpty, summary.worker != worker { continue }
                if let text, !text.isEmpty, !summary.id.localizedCaseInsensitiveContains(text),
                    !(summary.prompt ?? "").localizedCaseInsensitiveContains(text)
                {
                    continue
                }
                out.append(summary)
                if out.count >= limit { break }
            }
            return out
        }
    }

    public func job(_ id: String) -> (summary: JobSummary, job: LedgerState.Job, params: JobMessage?)? {
        state.withLock { state in
            guard let job = state.ledger.jobs[id], job.known else { return nil }
            return (JobSummary(job, progress: state.progress[id], params: state.params[id]), job, state.params[id])
        }
    }

    public func workers(now: Date, offlineAfter: TimeInterval, dropAfter: TimeInterval) -> [WorkerSummary] {
        state.withLock { state in
            state.ledger.workers.values.filter { now.timeIntervalSince($0.lastHeartbeat) < dropAfter }.sorted { $0.name < $1.name }.map {
                WorkerSummary(
                    name: $0.name, node: $0.node, slots: $0.slots, busy: $0.running.count, running: $0.running,
                    lastHeartbeat: $0.lastHeartbeat, secondsAgo: Int(now.timeIntervalSince($0.lastHeartbeat)),
                    online: now.timeIntervalSince($0.lastHeartbeat) < offlineAfter, version: $0.version, quarantined: $0.quarantined)
            }
        }
    }

    /// What the fleet has to do: jobs waiting (queued in the ledger's fold: in the queue, or
    /// given back) and running, beside the workers heard within `offlineAfter` and their slots.
    /// What an autoscaler scales on: running jobs are acked and no longer in the broker's queue.
    public func demand(now: Date, offlineAfter: TimeInterval) -> (queued: Int, running: Int, workers: Int, slots: Int) {
        state.withLock { state in
            var queued = 0
            var running = 0
            for job in state.ledger.jobs.values where job.known {
                switch job.state {
                case .queued: queued += 1
                case .running: running += 1
                case .ended: break
                }
            }
            let online = state.ledger.workers.values.filter { now.timeIntervalSince($0.lastHeartbeat) < offlineAfter }
            return (queued, running, online.count, online.reduce(0) { $0 + $1.slots })
        }
    }

    /// The fleet as Prometheus gauges, for the dashboard's `/metrics`: jobs queued and
    /// running, workers online and quarantined and their slots, queue depths (the dead-letter
    /// queue's too), how long the stalest running job's progress has not moved, the ledger's
    /// lag. One exporter for the fleet: it answers with no worker running (scaled to zero).
    public func metricsText(now: Date, offlineAfter: TimeInterval) -> String {
        let demand = demand(now: now, offlineAfter: offlineAfter)
        let (quarantined, queues, stalest, lag) = state.withLock { state in
            let quarantined = state.ledger.workers.values.filter { $0.quarantined && now.timeIntervalSince($0.lastHeartbeat) < offlineAfter }.count
            let stalest =
                state.ledger.jobs.values.filter { $0.state == .running }.map { job in
                    now.timeIntervalSince(max(state.progressSeen[job.id] ?? .distantPast, job.attempts.last?.claimedAt ?? now))
                }.max() ?? 0
            return (quarantined, state.queues, stalest, state.lastRecordAt.map { now.timeIntervalSince($0) } ?? 0)
        }
        var lines = [
            "# HELP genworker_fleet_jobs Jobs in the ledger's fold by state (queued: waiting in the queue or given back).",
            "# TYPE genworker_fleet_jobs gauge",
            "genworker_fleet_jobs{state=\"queued\"} \(demand.queued)",
            "genworker_fleet_jobs{state=\"running\"} \(demand.running)",
            "# HELP genworker_fleet_workers Workers heard within dashboard.offline_after_s, and those quarantined.",
            "# TYPE genworker_fleet_workers gauge",
            "genworker_fleet_workers{state=\"online\"} \(demand.workers)",
            "genworker_fleet_workers{state=\"quarantined\"} \(quarantined)",
            "# HELP genworker_fleet_slots The online workers' slots together.",
            "# TYPE genworker_fleet_slots gauge",
            "genworker_fleet_slots \(demand.slots)",
            "# HELP genworker_fleet_progress_stalled_seconds How long the running job whose progress moved longest ago has not moved.",
            "# TYPE genworker_fleet_progress_stalled_seconds gauge",
            "genworker_fleet_progress_stalled_seconds \(Int(stalest))",
            "# HELP genworker_fleet_ledger_lag_seconds Since the dashboard last folded a ledger record.",
            "# TYPE genworker_fleet_ledger_lag_seconds gauge",
            "genworker_fleet_ledger_lag_seconds \(Int(lag))",
            "# HELP genworker_queue_messages Messages in the jobs, dead-letter and unrouted queues.",
            "# TYPE genworker_queue_messages gauge",
        ]
        for (queue, depth) in queues.sorted(by: { $0.key < $1.key }) { lines.append("genworker_queue_messages{queue=\"\(queue)\"} \(depth)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One job as the HTTP API shows it: a dictionary lookup under the lock, whatever the window holds.
    public func apiJob(_ id: String) -> APIJob? {
        state.withLock { state in
            guard let job = state.ledger.jobs[id], job.known else { return nil }
            return APIJob(job, progress: state.progress[id], requestedBy: state.requestedBy[id])
        }
    }

    /// Jobs newest first (submitted, then id), those after `after` (a page's last), filtered
    /// as the API's list is; without timelines.
    public func apiJobs(
        state wanted: String?, task: String?, submitter: String?, since: Date?, until: Date?, after: (Date, String)?, limit: Int
    ) -> [APIJob] {
        let (ledger, progress, requestedBy) = state.withLock { ($0.ledger, $0.progress, $0.requestedBy) }
        var page: [APIJob] = []
        for job in ledger.knownJobs() {
            let submitted = job.submittedAt ?? job.lastChange
            if let after, (submitted, job.id) >= after { continue }
            if let since, submitted < since { continue }
            if let until, submitted >= until { continue }
            if let task, job.task != task { continue }
            let shown = APIJob(job, progress: progress[job.id], requestedBy: requestedBy[job.id], timeline: false)
            if let wanted, shown.state != wanted { continue }
            if let submitter, shown.submitter != submitter { continue }
            page.append(shown)
            if page.count >= limit { break }
        }
        return page
    }

    public var queues: [String: UInt32] { state.withLock { $0.queues } }

    public var health: (connected: Bool, jobs: Int, folded: Int, lagSeconds: Double?) {
        state.withLock { ($0.connected, $0.ledger.jobs.count, $0.folded, $0.lastRecordAt.map { Date().timeIntervalSince($0) }) }
    }

    package func summaryJSON(_ id: String) -> String? {
        let summary: JobSummary? = state.withLock { state in
            state.ledger.jobs[id].flatMap { $0.known ? JobSummary($0, progress: state.progress[id], params: state.params[id]) : nil }
        }
        return summary.flatMap { try? String(decoding: ProtocolCoding.encode($0), as: UTF8.self) }
    }

    // MARK: - Watchers

    /// A stream of job summaries (JSON) as they change, until ``unsubscribe(_:)`` (or shutdown).
    public func subscribe() -> (id: UUID, updates: AsyncStream<String>) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1000))
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        return (id, stream)
    }

    public func unsubscribe(_ id: UUID) { subscribers.withLock { $0.removeValue(forKey: id) }?.finish() }

    public var watchers: Int { subscribers.withLock { $0.count } }

    /// A comment line to every watcher: a page that went away is noticed at this write.
    package func ping() { broadcast(":") }

    /// Ends every watcher's stream (shutdown: their responses finish, the server can stop).
    package func finishAll() {
        finishing.store(true, ordering: .releasing)
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.finish() }
    }

    private func broadcast(_ json: String) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(json) }
    }
}

/// A job as the dashboard lists it (and pushes it to the pages).
public struct JobSummary: Codable, Sendable, Equatable {
    public var id: String
    public var task: String?
    /// queued, running, ended.
    public var state: String
    /// For ended jobs: completed, failed, cancelled.
    public var status: String?
    public var reason: String?
    public var worker: String?
    public var attempt: Int?
    public var submittedAt: Date?
    public var step: Int?
    public var total: Int?
    public var percent: Int?
    public var etaSeconds: Int?
    public var phase: String?
    /// A cancel was asked for and the truthful `cancelled` has not come yet.
    public var cancelling: Bool
    public var prompt: String?
    public var output: String?

    package init(_ job: LedgerState.Job, progress: JobEvent?, params: JobMessage?) {
        id = job.id
        task = job.task
        state = job.state.rawValue
        status = job.result?.status?.rawValue ?? job.result?.event.rawValue
        reason = job.result?.reason?.rawValue
        worker = job.result?.worker ?? job.live?.worker ?? job.attempts.last?.worker
        attempt = job.attempts.last?.number
        submittedAt = job.submittedAt
        let p = progress?.progress ?? job.progress
        step = p?.step
        total = p?.total
        percent = p?.percent
        etaSeconds = p?.etaSeconds
        phase = p?.phase ?? progress?.step ?? job.step
        cancelling = !job.cancelledBy.isEmpty && job.state != .ended
        if case .string(let text)? = params?.params["prompt"] { prompt = String(text.prefix(300)) }
        output = job.result?.output
    }

    package enum CodingKeys: String, CodingKey {
        case id, task, state, status, reason, worker, attempt, step, total, percent, phase, cancelling, prompt, output
        case submittedAt = "submitted_at"
        case etaSeconds = "eta_s"
    }
}

public struct WorkerSummary: Codable, Sendable, Equatable {
    public var name: String
    public var node: String?
    public var slots: Int
    public var busy: Int
    public var running: [String]
    public var lastHeartbeat: Date
    public var secondsAgo: Int
    public var online: Bool
    public var version: String?
    /// Taking no jobs until its probe passes (`worker.quarantine_after`).
    public var quarantined = false

    package enum CodingKeys: String, CodingKey {
        case name, node, slots, busy, running, online, version, quarantined
        case lastHeartbeat = "last_heartbeat"
        case secondsAgo = "seconds_ago"
    }
}
