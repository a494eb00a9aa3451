import Foundation

/// The fleet's state, folded from the ledger in its one total order. Every worker (and
/// every `genworker status`) folds the same records in the same order and so reaches the
/// same decisions: which claim won, which expiry counts, which end is the job's result.
/// Pure: the caller says what time it is; ``apply(_:at:)`` returns what changed as
/// ``LedgerEffect``s for the caller to act on.
public struct LedgerState: Sendable {
    public enum JobState: String, Sendable, Codable {
        /// Submitted (or requeued after an expiry / release), no live attempt.
        case queued
        case running
        case ended
    }

    /// One attempt at a job: a claim that won.
    public struct Attempt: Sendable, Equatable, Codable {
        public var number: Int
        public var worker: String
        public var claimedAt: Date
        public var endedAt: Date?
        /// `ended`, `expired` or `released` once over.
        public var outcome: AttemptOutcome?

        package enum CodingKeys: String, CodingKey {
            case number, worker, outcome
            case claimedAt = "claimed_at"
            case endedAt = "ended_at"
        }
    }

    /// How an attempt ended (`outcome` in `genworker status`).
    public enum AttemptOutcome: String, Codable, Sendable {
        /// Its end was the job's result.
        case ended
        /// Its worker stopped renewing it; another worker expired it and requeued the job.
        case expired
        /// Its worker gave it back (a requeue-mode shutdown).
        case released
    }

    /// Where a terminal result goes besides the events exchange.
    public struct Reply: Sendable, Equatable, Hashable, Codable {
        public var replyTo: String
        public var correlationID: String?

        enum CodingKeys: String, CodingKey {
            case replyTo = "reply_to"
            case correlationID = "correlation_id"
        }
    }

    public struct Job: Sendable {
        public let id: String
        public var task: String?
        public var submitter: String?
        public var submittedAt: Date?
        public var state: JobState = .queued
        /// Whether a submission or a claim was seen (a cancel alone does not make a job known).
        public var known = false
        public var attempts: [Attempt] = []
        /// Attempts that ended by expiry (the worker died or was cut off): counted against
        /// `topology.delivery_limit`, less those whose owner's same life renewed again later
        /// (cut off by a partition or a freeze, not killed: the job is not to blame).
        public var expiries = 0
        /// Expiries excused so far: a job that cuts every owner off (it freezes or floods the
        /// host) must still reach the limit, so ``JobIntake`` counts those past the limit again.
        public var excused = 0
        /// Attempts given back because they failed for their machine's sake (a release with a
        /// ``LedgerRecord/reason``): against `jobs.machine_fault_retries`.
        public var machineFaults = 0
        /// The life of the heartbeat that last renewed the live attempt.
        package var renewLife: String? {
            get { run.renewLife }
            set { run.renewLife = newValue }
        }
        /// The owner, life and last renewal counter of the last expired attempt, until that
        /// life is heard again (with a higher counter: a heartbeat written after the cut).
        package var expiredLife: (worker: String, life: String, counter: Int)? {
            get { run.expiredLife }
            set { run.expiredLife = newValue }
        }
        /// The renewal counter that last renewed the live attempt (-1: its claim).
        public var renewCounter: Int {
            get { run.renewCounter }
            set { run.renewCounter = newValue }
        }
        /// When the live attempt's last renewal was seen, on the folding side's clock (never a record's `at`).
        public var renewedAt: Date? {
            get { run.renewedAt }
            set { run.renewedAt = newValue }
        }
        /// When the live attempt was last renewed, as its writer dated the record (for display only).
        public var renewalWrittenAt: Date? {
            get { run.renewalWrittenAt }
            set { run.renewalWrittenAt = newValue }
        }
        public var progress: JobProgress? {
            get { run.progress }
            set { run.progress = newValue }
        }
        public var step: String? {
            get { run.step }
            set { run.step = newValue }
        }
        /// The job message of the live (or last expired) attempt, to requeue it.
        public var body: String? {
            get { run.body }
            set { run.body = newValue }
        }
        /// Since when (this fold's clock) the job, given back by a valid expiry or release,
        /// waits for its requeue to reach the jobs exchange: nil again once the ledger holds a
        /// submission or a claim of it (see ``LedgerState/unrequeued(at:grace:)``).
        package var requeueAwaitedSince: Date? {
            get { run.requeueAwaitedSince }
            set { run.requeueAwaitedSince = newValue }
        }
        public var result: JobEvent? {
            get { boxedResult?.value }
            set { boxedResult = newValue.map(Boxed.init) }
        }
        public var replies: [Reply] = []
        /// Users who cancelled it (nil: a cancel without `user_id`).
        public var cancelledBy: [String?] = []
        public var lastChange: Date
        /// When this fold last saw the job change, on its own clock: what pruning reads, so
        /// that neither a writer's clock nor replaying decides what a reader forgets.
        public var lastSeen: Date
        // A window holds tens of thousands of jobs in a dictionary that stores each `Job`
        // inline, in buckets kept at most 3/4 full (25,000 jobs: 65,536 buckets). So what
        // only a live or expired attempt has, and the result, live behind one pointer each:
        // 600 bytes a job before, 136 after (fleet_bench.py ready, docs/benchmarks.md).
        private var boxedResult: Boxed<JobEvent>?
        private var boxedRun: Boxed<RunDetail>?
        private var run: RunDetail {
            get { boxedRun?.value ?? RunDetail() }
            set { boxedRun = newValue.isEmpty ? nil : Boxed(newValue) }
        }

        package init(id: String, at: Date) {
            self.id = id
            lastChange = at
            lastSeen = at
        }

        /// The attempt now running, if any.
        public var live: Attempt? { state == .running ? attempts.last : nil }
    }

    /// What a job has only while an attempt is live or after one expired (see `Job`).
    private struct RunDetail: Sendable {
        var renewLife: String?
        var expiredLife: (worker: String, life: String, counter: Int)?
        var renewCounter = -1
        var renewedAt: Date?
        var renewalWrittenAt: Date?
        var progress: JobProgress?
        var step: String?
        var body: String?
        var requeueAwaitedSince: Date?

        var isEmpty: Bool {
            renewLife == nil && expiredLife == nil && renewCounter == -1 && renewedAt == nil && renewalWrittenAt == nil
                && progress == nil && step == nil && body == nil && requeueAwaitedSince == nil
        }
    }

    /// An immutable value on the heap: a setter replaces the box, so `Job` keeps value semantics.
    private final class Boxed<Value: Sendable>: Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    /// A worker as its heartbeats describe it.
    public struct WorkerView: Sendable, Equatable {
        public var name: String
        public var node: String?
        public var slots: Int
        public var running: [String]
        public var version: String?
        public var lastHeartbeat: Date
        /// When this fold saw that heartbeat (pruning reads this one).
        public var lastSeen: Date
        /// Taking no jobs: they kept failing for the machine's sake (`worker.quarantine_after`).
        public var quarantined = false
    }

    /// What a claim came to.
    public enum ClaimOutcome: Sendable, Equatable {
        /// The claimer owns attempt `attempt` and runs it.
        case won(attempt: Int)
        /// Another attempt is live: the claimer's `reply_to` gets the result when it comes.
        case attached
        /// The job has a result already: the claimer answers with it.
        case ended(JobEvent)
    }

    /// How much of an ended job a fold keeps.
    public enum Detail: Sendable {
        /// Everything: attempts, progress, the result with its log tail (the dashboard, `genworker status`).
        case full
        /// What a worker's decisions need of an ended job: its result, without the log tail
        /// (a duplicate is answered with it; the results queue had the whole result). A window
        /// of ended jobs then costs a worker little memory.
        case decisions
    }

    public let retention: TimeInterval
    public let detail: Detail
    public private(set) var jobs: [String: Job] = [:]
    public private(set) var workers: [String: WorkerView] = [:]
    /// Jobs whose last expiry may yet be excused, by the expired owner's name (see `Job.expiredLife`).
    private var excusable: [String: Set<String>] = [:]
    /// Records folded (for the metrics and `time to ready`).
    public private(set) var folded = 0
    /// Records ignored because an account that may not write the ledger wrote them.
    public private(set) var forged = 0
    private var lastPrune: Date?

    public init(retention: TimeInterval, detail: Detail = .full) {
        self.retention = retention
        self.detail = detail
    }

    /// Folds one entry, seen at `now` on the folding side's own clock (a worker passes its
    /// monotonic ``WorkerClock``). Record times (`at`) only date what a replayed record shows
    /// (claimed, ended); leases never read them: a renewal counts from the moment this side saw
    /// it, so no lease decision compares the clocks of two machines, and a replayed renewal
    /// counts as seen now (the safe side: its owner's fence runs from when it wrote it).
    public mutating func apply(_ entry: LedgerEntry, at now: Date, live: Bool = true) -> [LedgerEffect] {
        folded += 1
        defer { pruneIfDue(now) }
        switch entry {
        case .other:
            return []
        case .forged:
            forged += 1
            return []
        case .submitted(let id, let task, let submitter, let at):
            var job = jobs[id] ?? Job(id: id, at: now)
            if !job.known {
                job.known = true
                job.task = task
                job.submitter = submitter
                job.submittedAt = at ?? now
            }
            // A message of the job reached the jobs exchange (a requeue, or a client's copy):
            // the queue holds it, whoever sent it.
            if job.state == .queued { job.requeueAwaitedSince = nil }
            job.lastChange = now
            job.lastSeen = now
            jobs[id] = job
            return []
        case .cancelled(let id, let user):
            var job = jobs[id] ?? Job(id: id, at: now)
            job.cancelledBy.append(user)
            job.lastChange = now
            job.lastSeen = now
            jobs[id] = job
            return [.cancelRequested(id: id, user: user, attempt: job.live)]
        case .record(let record):
            let when = live ? now : min(record.at, now)
            switch record.kind {
            case .claim: return claim(record, at: when, seen: now)
            case .heartbeat: return heartbeat(record, at: when, seen: now)
            case .expire, .release: return expire(record, at: when, seen: now)
            case .end: return end(record, at: when, seen: now)
            case .marker: return [.marker(ref: record.ref)]
            case .carry: return carry(record, at: when, seen: now)
            }
        }
    }

    private mutating func claim(_ record: LedgerRecord, at now: Date, seen: Date) -> [LedgerEffect] {
        guard let id = record.id else { return [] }
        var job = jobs[id] ?? Job(id: id, at: now)
        job.lastChange = now
        job.lastSeen = seen
        job.known = true
        job.task = job.task ?? record.task
        job.submitter = job.submitter ?? record.submitter
        if job.submittedAt == nil { job.submittedAt = now }
        let outcome: ClaimOutcome
        switch job.state {
        case .ended:
            outcome = .ended(job.result!)
        case .running:
            if let replyTo = record.replyTo, !replyTo.isEmpty { job.addReply(Reply(replyTo: replyTo, correlationID: record.correlationID)) }
            outcome = .attached
        case .queued:
            // A requeued message says which attempt it follows and how many expiries counted
            // (``LedgerRecord/requeuedAfter``): a reader whose window starts after those
            // attempts numbers and counts this one as the readers that saw them do.
            let number = max(job.attempts.last?.number ?? 0, record.requeuedAfter ?? 0) + 1
            job.expiries = max(job.expiries, record.expiries ?? 0)
            job.machineFaults = max(job.machineFaults, record.machineFaults ?? 0)
            // The task of the copy that won (validated), not of a first broken copy: a requeue routes by it.
            job.task = record.task ?? job.task
            job.attempts.append(Attempt(number: number, worker: record.worker, claimedAt: now))
            job.state = .running
            job.requeueAwaitedSince = nil
            job.renewCounter = -1
            job.renewedAt = seen
            job.renewalWrittenAt = now
            job.progress = nil
            job.step = nil
            job.body = record.job
            if let replyTo = record.replyTo, !replyTo.isEmpty { job.addReply(Reply(replyTo: replyTo, correlationID: record.correlationID)) }
            outcome = .won(attempt: number)
        }
        jobs[id] = job
        return [.claimDecided(ref: record.ref, id: id, outcome: outcome)]
    }

    private mutating func heartbeat(_ record: LedgerRecord, at now: Date, seen: Date) -> [LedgerEffect] {
        let runs = record.runs ?? []
        workers[record.worker] = WorkerView(
            name: record.worker, node: record.node, slots: record.slots ?? 0, running: runs.map(\.id), version: record.version, lastHeartbeat: now,
            lastSeen: seen, quarantined: record.quarantined ?? false)
        var effects: [LedgerEffect] = []
        // The same life of a worker whose attempts were expired renews again: it was cut off
        // (a partition, a frozen process), not killed, so those expiries do not count against
        // the jobs. A new life (a restart) excuses nothing: the job may have killed the last one.
        if let life = record.life, let counter = record.counter, let pending = excusable[record.worker] {
            for id in pending {
                guard let expired = jobs[id]?.expiredLife, expired.worker == record.worker else {
                    excusable[record.worker]?.remove(id)
                    continue
                }
                if expired.life != life {
                    excusable[record.worker]?.remove(id)  // that life is over: the expiry counts
                } else if counter > expired.counter {
                    jobs[id]!.expiries -= 1
                    jobs[id]!.excused += 1
                    jobs[id]!.expiredLife = nil
                    excusable[record.worker]?.remove(id)
                }
            }
            if excusable[record.worker]?.isEmpty ?? false { excusable[record.worker] = nil }
        }
        for run in runs {
            // A run this fold never saw claimed (its claim is older than where this reader
            // started): its owner's word is the only one, and the fold takes it as live, so a
            // duplicate submission attaches instead of winning a second run.
            if lacks(run.id, attempt: run.attempt) { adopt(run.id, attempt: run.attempt, worker: record.worker, at: now, seen: seen) }
            guard var job = jobs[run.id], let live = job.live, live.number == run.attempt, live.worker == record.worker else {
                // The worker runs something the ledger no longer gives it: it must stop.
                effects.append(.notOwner(worker: record.worker, id: run.id, attempt: run.attempt))
                continue
            }
            // The highest counter seen: a late duplicate of an older heartbeat must not make an
            // expiry that names the newest one invalid (or an outdated one valid).
            job.renewCounter = max(job.renewCounter, record.counter ?? job.renewCounter)
            job.renewLife = record.life ?? job.renewLife
            job.renewedAt = seen
            job.renewalWrittenAt = now
            if let progress = run.progress { job.progress = progress }
            if let step = run.step { job.step = step }
            jobs[run.id] = job
        }
        effects.append(.heartbeat(ref: record.ref, worker: record.worker))
        return effects
    }

    /// Whether this fold never saw attempt `attempt` of `id` although its owner runs it: the
    /// claim is older than where this reader started, while the job is unknown here or known
    /// only from a later submission (a duplicate) or an earlier attempt. A fold that read the
    /// claim never lacks it (the claim precedes every heartbeat that lists the run).
    private func lacks(_ id: String, attempt: Int) -> Bool {
        guard let job = jobs[id] else { return true }
        return !job.known || (job.state == .queued && (job.attempts.last?.number ?? 0) < attempt)
    }

    /// Takes attempt `attempt` of a job this fold lacks (``lacks(_:attempt:)``) as live on
    /// `worker`, so a duplicate submission attaches instead of winning a second run.
    private mutating func adopt(_ id: String, attempt: Int, worker: String, at now: Date, seen: Date) {
        var job = jobs[id] ?? Job(id: id, at: now)
        job.known = true
        job.state = .running
        job.requeueAwaitedSince = nil
        job.renewCounter = -1
        job.attempts.append(Attempt(number: attempt, worker: worker, claimedAt: now))
        job.renewedAt = seen
        job.renewalWrittenAt = now
        job.lastChange = now
        job.lastSeen = seen
        jobs[id] = job
    }

    /// A long run's claim, written again by its owner: teaches a reader that started after the
    /// claim what it needs (the body to requeue it, the submitter, a reply_to); a renewal otherwise.
    private mutating func carry(_ record: LedgerRecord, at now: Date, seen: Date) -> [LedgerEffect] {
        guard let id = record.id, let attempt = record.attempt else { return [] }
        if lacks(id, attempt: attempt) { adopt(id, attempt: attempt, worker: record.worker, at: now, seen: seen) }
        guard var job = jobs[id], let live = job.live, live.number == attempt, live.worker == record.worker else { return [] }
        job.task = job.task ?? record.task
        job.submitter = job.submitter ?? record.submitter
        job.body = job.body ?? record.job
        // Only ever counted up, so the larger of the two is right whoever folded less.
        job.machineFaults = max(job.machineFaults, record.machineFaults ?? 0)
        if let replyTo = record.replyTo, !replyTo.isEmpty { job.addReply(Reply(replyTo: replyTo, correlationID: record.correlationID)) }
        for reply in record.replies ?? [] where !reply.replyTo.isEmpty { job.addReply(reply) }
        // The counter of the heartbeat written with it: a reader that adopted the run from
        // this carry judges an expiry by the same counter as the readers that saw that heartbeat.
        job.renewCounter = max(job.renewCounter, record.counter ?? job.renewCounter)
        jobs[id] = job
        return []
    }

    private mutating func expire(_ record: LedgerRecord, at now: Date, seen: Date) -> [LedgerEffect] {
        let releasing = record.kind == .release
        guard let id = record.id, var job = jobs[id], let live = job.live, live.number == record.attempt,
            releasing ? live.worker == record.worker : job.renewCounter == record.counter
        else { return [.expiryDecided(ref: record.ref, id: record.id ?? "", valid: false, requeue: nil)] }
        job.attempts[job.attempts.count - 1].outcome = releasing ? .released : .expired
        job.attempts[job.attempts.count - 1].endedAt = now
        if releasing, let reason = record.reason, JobReason(rawValue: reason)?.isMachineFault == true { job.machineFaults += 1 }
        if !releasing {
            job.expiries += 1
            job.expiredLife = job.renewLife.map { (live.worker, $0, job.renewCounter) }
            if job.expiredLife != nil { excusable[live.worker, default: []].insert(id) }
        }
        job.renewLife = nil
        job.state = .queued
        job.renewedAt = nil
        job.renewalWrittenAt = nil
        job.requeueAwaitedSince = job.body == nil ? nil : seen
        job.lastChange = now
        job.lastSeen = seen
        jobs[id] = job
        let requeue = job.body.map {
            Requeue(
                id: id, task: job.task, body: $0, replies: job.replies, after: live.number, expiries: job.expiries, machineFaults: job.machineFaults)
        }
        return [
            .attemptLost(id: id, attempt: live.number, worker: live.worker),
            .expiryDecided(ref: record.ref, id: id, valid: true, requeue: requeue),
        ]
    }

    private mutating func end(_ record: LedgerRecord, at now: Date, seen: Date) -> [LedgerEffect] {
        guard let id = record.id, let result = record.result else { return [] }
        var job = jobs[id] ?? Job(id: id, at: now)
        job.task = job.task ?? result.task
        // Counts when the job has no result yet and the writer owns the live attempt, or,
        // for an end without a run (invalid, cancelled before start, delivery limit), when
        // no attempt is live.
        let attempt = record.attempt ?? 0
        let counts: Bool
        switch job.state {
        case .ended: counts = false
        case .running: counts = job.live?.number == attempt && job.live?.worker == record.worker
        case .queued:
            // An end that never ran (an invalid message) ends only a job no attempt has
            // claimed: a broken duplicate must not end a valid job waiting in the queue for its
            // next attempt (a requeue). Cancels before start and the delivery limit are ends
            // of the attempt their claim won.
            counts = attempt == 0 && job.attempts.isEmpty
            // A copy of a job given back that its worker could not validate (its inputs are not
            // on that machine, a config apart, a client's broken duplicate) was dead-lettered:
            // the queue may hold no message of the job any more. The repair watches it again.
            if !counts, attempt == 0, !job.attempts.isEmpty, job.body != nil {
                job.requeueAwaitedSince = seen
                jobs[id] = job
            }
        }
        if counts {
            if job.state == .running {
                job.attempts[job.attempts.count - 1].outcome = .ended
                job.attempts[job.attempts.count - 1].endedAt = now
            }
            job.known = true
            job.state = .ended
            job.result = result
            job.body = nil
            job.requeueAwaitedSince = nil
            if detail == .decisions {
                job.result?.logTail = nil
                job.result?.progress = nil
                job.progress = nil
                job.step = nil
                // The attempt is over: nothing renews or expires it again.
                job.renewLife = nil
                job.renewCounter = -1
                job.renewedAt = nil
                job.renewalWrittenAt = nil
                job.attempts = job.attempts.suffix(1)
            }
            job.lastChange = now
            job.lastSeen = seen
            jobs[id] = job
            if let owner = job.attempts.last?.worker { workers[owner]?.running.removeAll { $0 == id } }
        }
        return [
            .endDecided(ref: record.ref, id: id, counted: counts, replies: jobs[id]?.replies ?? [])
        ]
    }

    /// Forgets jobs (the dashboard's `max_jobs` cap).
    public mutating func forget(_ ids: [String]) {
        for id in ids { jobs[id] = nil }
    }

    /// Live attempts not renewed for `lease` by `now`: what a caught-up worker may expire.
    public func overdue(at now: Date, lease: TimeInterval) -> [(id: String, attempt: Int, counter: Int)] {
        jobs.values.compactMap { job in
            guard let live = job.live, let renewed = job.renewedAt, now.timeIntervalSince(renewed) > lease else { return nil }
            return (job.id, live.number, job.renewCounter)
        }.sorted { $0.id < $1.id }
    }

    /// Jobs a valid expiry or release gave back whose requeue has not reached the jobs exchange
    /// `grace` after this fold saw it: the writer, who alone requeues, stopped or lost the
    /// broker between its record and the requeue (finding 10 in docs/reliability.md). What a
    /// caught-up worker may requeue in its stead; a second copy is harmless (its claim finds
    /// the job running or ended).
    public func unrequeued(at now: Date, grace: TimeInterval) -> [Requeue] {
        jobs.values.compactMap { job in
            guard job.state == .queued, let since = job.requeueAwaitedSince, now.timeIntervalSince(since) > grace, let body = job.body,
                let after = job.attempts.last?.number
            else { return nil }
            return Requeue(
                id: job.id, task: job.task, body: body, replies: job.replies, after: after, expiries: job.expiries, machineFaults: job.machineFaults)
        }.sorted { $0.id < $1.id }
    }

    /// Jobs ended (or cancelled-only ids, or workers silent) longer ago than the retention are forgotten.
    private mutating func pruneIfDue(_ now: Date) {
        if let last = lastPrune, now.timeIntervalSince(last) < 60 { return }
        lastPrune = now
        let horizon = now.addingTimeInterval(-retention)
        // A job requeued after an attempt stays until it runs again or ends, however long it
        // waits in the queue: forgetting it in one reader and not another would number its
        // next attempt differently in each.
        jobs = jobs.filter { $0.value.state == .running || ($0.value.state == .queued && !$0.value.attempts.isEmpty) || $0.value.lastSeen > horizon }
        workers = workers.filter { $0.value.lastSeen > horizon }
    }
}

extension LedgerState.Job {
    fileprivate mutating func addReply(_ reply: LedgerState.Reply) {
        if !replies.contains(reply) { replies.append(reply) }
    }

    /// With `cancel.authorize`, only the submitter's or an admin's cancel counts.
    public func isCancelled(allowed: (String?) -> Bool) -> Bool { cancelledBy.contains(where: allowed) }
}

/// What a worker must republish after a valid expiry or release it wrote.
public struct Requeue: Sendable, Equatable {
    public var id: String
    public var task: String?
    public var body: String
    public var replies: [LedgerState.Reply]
    /// The attempt that ended, and the expiries counted so far: the requeued message carries
    /// both (headers), and the claim of it too, so every reader numbers the next attempt alike.
    public var after: Int
    public var expiries: Int
    /// The machine-fault releases so far (`jobs.machine_fault_retries`), carried the same way:
    /// a reader whose window starts after the release must not grant the job another retry.
    public var machineFaults = 0
}

/// What folding a record decided, for whoever wrote it or runs the job.
public enum LedgerEffect: Sendable, Equatable {
    case claimDecided(ref: String, id: String, outcome: LedgerState.ClaimOutcome)
    /// The writer's heartbeat is in the order: its runs are renewed.
    case heartbeat(ref: String, worker: String)
    case expiryDecided(ref: String, id: String, valid: Bool, requeue: Requeue?)
    case endDecided(ref: String, id: String, counted: Bool, replies: [LedgerState.Reply])
    /// Attempt `attempt` of `id` is over by expiry or release: its worker must stop it at once.
    case attemptLost(id: String, attempt: Int, worker: String)
    /// A heartbeat listed a run the ledger does not give that worker.
    case notOwner(worker: String, id: String, attempt: Int)
    case cancelRequested(id: String, user: String?, attempt: LedgerState.Attempt?)
    case marker(ref: String)
}
