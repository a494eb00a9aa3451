import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// The ledger's rules, folded record by record without a broker: which claim wins, which
/// expiry counts, which end is the job's one result.
final class LedgerStateTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    var state = LedgerState(retention: 24 * 3600)

    func record(_ kind: LedgerRecord.Kind, _ worker: String, id: String? = nil, attempt: Int? = nil, counter: Int? = nil, ref: String)
        -> LedgerEntry
    {
        var r = LedgerRecord(kind: kind, worker: worker, at: t0, ref: ref, id: id, attempt: attempt)
        r.counter = counter
        if kind == .claim {
            r.job = #"{"id":"\#(id!)","task":"t2v-A14B","params":{}}"#
            r.task = "t2v-A14B"
            r.replyTo = "reply-\(ref)"
        }
        return .record(r)
    }

    func heartbeat(_ worker: String, counter: Int, runs: [(String, Int)], ref: String) -> LedgerEntry {
        var r = LedgerRecord(kind: .heartbeat, worker: worker, at: t0, ref: ref)
        r.counter = counter
        r.runs = runs.map { HeartbeatRun(id: $0.0, attempt: $0.1) }
        r.slots = 1
        return .record(r)
    }

    func end(_ worker: String, id: String, attempt: Int, status: JobEventKind = .completed, ref: String) -> LedgerEntry {
        var r = LedgerRecord(kind: .end, worker: worker, at: t0, ref: ref, id: id, attempt: attempt)
        r.result = JobEvent(id: id, task: "t2v-A14B", event: status, worker: worker)
        return .record(r)
    }

    func apply(_ entry: LedgerEntry, at seconds: TimeInterval = 0) -> [LedgerEffect] {
        state.apply(entry, at: t0.addingTimeInterval(seconds))
    }

    func testTheFirstClaimWinsAndLaterOnesAttach() {
        _ = apply(.submitted(id: "j", task: "t2v-A14B", submitter: "alice", at: t0))
        XCTAssertEqual(state.jobs["j"]?.state, .queued)
        XCTAssertEqual(apply(record(.claim, "w1", id: "j", ref: "c1")), [.claimDecided(ref: "c1", id: "j", outcome: .won(attempt: 1))])
        XCTAssertEqual(apply(record(.claim, "w2", id: "j", ref: "c2")), [.claimDecided(ref: "c2", id: "j", outcome: .attached)])
        XCTAssertEqual(state.jobs["j"]?.live?.worker, "w1")
        XCTAssertEqual(state.jobs["j"]?.replies.map(\.replyTo), ["reply-c1", "reply-c2"], "both submitters get the result")
        guard case .endDecided(_, _, true, let replies)? = apply(end("w1", id: "j", attempt: 1, ref: "e1")).first else { return XCTFail() }
        XCTAssertEqual(replies.count, 2)
        // A third submission after the end gets the recorded result.
        guard case .claimDecided(_, _, .ended(let result))? = apply(record(.claim, "w3", id: "j", ref: "c3")).first else { return XCTFail() }
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(state.jobs["j"]?.attempts.count, 1, "one run")
    }

    func testOnlyTheOwnersEndCountsAndOnlyOnce() {
        _ = apply(record(.claim, "w1", id: "j", ref: "c1"))
        guard case .endDecided(_, _, false, _)? = apply(end("w2", id: "j", attempt: 1, ref: "x")).first else {
            return XCTFail("an end from a worker that does not own the attempt must not count")
        }
        guard case .endDecided(_, _, true, _)? = apply(end("w1", id: "j", attempt: 1, ref: "e1")).first else { return XCTFail() }
        guard case .endDecided(_, _, false, _)? = apply(end("w1", id: "j", attempt: 1, status: .failed, ref: "e2")).first else {
            return XCTFail()
        }
        XCTAssertEqual(state.jobs["j"]?.result?.status, .completed, "the first result stays the job's result")
    }

    func testAnExpiryCountsOnlyIfNoLaterRenewalStandsBeforeIt() {
        _ = apply(record(.claim, "w1", id: "j", ref: "c1"))
        _ = apply(heartbeat("w1", counter: 5, runs: [("j", 1)], ref: "h5"), at: 10)
        // w2 saw counter 4 (stale): its expiry is invalid because renewal 5 came first.
        XCTAssertEqual(
            apply(record(.expire, "w2", id: "j", attempt: 1, counter: 4, ref: "x4"), at: 11),
            [.expiryDecided(ref: "x4", id: "j", valid: false, requeue: nil)])
        XCTAssertEqual(state.jobs["j"]?.state, .running)
        let effects = apply(record(.expire, "w3", id: "j", attempt: 1, counter: 5, ref: "x5"), at: 200)
        XCTAssertEqual(effects.first, .attemptLost(id: "j", attempt: 1, worker: "w1"))
        guard case .expiryDecided("x5", "j", true, let requeue?)? = effects.last else { return XCTFail() }
        XCTAssertTrue(requeue.body.contains(#""id":"j""#))
        XCTAssertEqual(state.jobs["j"]?.state, .queued)
        XCTAssertEqual(state.jobs["j"]?.expiries, 1)
        // A second expiry of the same attempt does not count again.
        guard case .expiryDecided(_, _, false, nil)? = apply(record(.expire, "w4", id: "j", attempt: 1, counter: 5, ref: "x6")).first else {
            return XCTFail()
        }
        // The cut-off owner's late result does not count; its heartbeat is told it is not the owner.
        guard case .endDecided(_, _, false, _)? = apply(end("w1", id: "j", attempt: 1, ref: "late")).first else { return XCTFail() }
        XCTAssertEqual(apply(heartbeat("w1", counter: 6, runs: [("j", 1)], ref: "h6")).first, .notOwner(worker: "w1", id: "j", attempt: 1))
        // The requeued job is claimed again: attempt 2.
        XCTAssertEqual(
            apply(record(.claim, "w2", id: "j", ref: "c2")).first, .claimDecided(ref: "c2", id: "j", outcome: .won(attempt: 2)))
    }

    func heartbeat(_ worker: String, life: String, counter: Int, runs: [(String, Int)], ref: String) -> LedgerEntry {
        guard case .record(var r) = heartbeat(worker, counter: counter, runs: runs, ref: ref) else { fatalError() }
        r.life = life
        return .record(r)
    }

    func testAnExpiryIsExcusedWhenTheSameLifeOfItsOwnerRenewsAgainAndOnlyThen() {
        // w1's life A renews attempt 1 with counter 3; w2 expires it (a partition).
        _ = apply(record(.claim, "w1", id: "cut", ref: "c1"))
        _ = apply(heartbeat("w1", life: "A", counter: 3, runs: [("cut", 1)], ref: "h3"))
        _ = apply(record(.expire, "w2", id: "cut", attempt: 1, counter: 3, ref: "x1"))
        XCTAssertEqual(state.jobs["cut"]?.expiries, 1)
        // A late copy of a heartbeat written before the cut proves nothing.
        _ = apply(heartbeat("w1", life: "A", counter: 3, runs: [("cut", 1)], ref: "h3"))
        XCTAssertEqual(state.jobs["cut"]?.expiries, 1)
        // The same life after the heal (its fence stopped the run: no runs listed): excused.
        _ = apply(heartbeat("w1", life: "A", counter: 4, runs: [], ref: "h4"))
        XCTAssertEqual(state.jobs["cut"]?.expiries, 0, "a cut-off owner's expiry does not count against the job")
        _ = apply(heartbeat("w1", life: "A", counter: 5, runs: [], ref: "h5"))
        XCTAssertEqual(state.jobs["cut"]?.expiries, 0, "excused once, not twice")

        // A worker killed and restarted (a new life) excuses nothing: the job may have killed it.
        _ = apply(record(.claim, "w1", id: "killer", ref: "c2"))
        _ = apply(heartbeat("w1", life: "A", counter: 6, runs: [("killer", 1)], ref: "h6"))
        _ = apply(record(.expire, "w2", id: "killer", attempt: 1, counter: 6, ref: "x2"))
        _ = apply(heartbeat("w1", life: "B", counter: 9, runs: [], ref: "hB9"))
        _ = apply(heartbeat("w1", life: "A", counter: 7, runs: [], ref: "h7"))  // nothing after a new life revives the old one
        XCTAssertEqual(state.jobs["killer"]?.expiries, 1)
        // Heartbeats without a life (an older worker) excuse nothing either.
        _ = apply(record(.claim, "w3", id: "old", ref: "c3"))
        _ = apply(heartbeat("w3", counter: 1, runs: [("old", 1)], ref: "o1"))
        _ = apply(record(.expire, "w2", id: "old", attempt: 1, counter: 1, ref: "x3"))
        _ = apply(heartbeat("w3", counter: 2, runs: [], ref: "o2"))
        XCTAssertEqual(state.jobs["old"]?.expiries, 1)
    }

    // MARK: - Readers whose window starts late (review of session 5)

    func testARunKnownOnlyFromALaterDuplicateIsTakenFromItsOwnersHeartbeat() {
        // This reader's window starts after W's claim of attempt 3; it holds a duplicate
        // submission first, then W's heartbeat.
        _ = apply(.submitted(id: "long", task: "t2v-A14B", submitter: nil, at: t0))
        _ = apply(heartbeat("w", counter: 7, runs: [("long", 3)], ref: "h7"))
        XCTAssertEqual(state.jobs["long"]?.live?.worker, "w")
        XCTAssertEqual(state.jobs["long"]?.live?.number, 3)
        XCTAssertEqual(
            apply(record(.claim, "n", id: "long", ref: "dup")), [.claimDecided(ref: "dup", id: "long", outcome: .attached)],
            "the duplicate attaches: no second run")
        // A heartbeat of an attempt this fold saw end changes nothing (it is the owner's late word).
        var other = LedgerState(retention: 3600)
        _ = other.apply(record(.claim, "w", id: "j", ref: "c"), at: t0)
        _ = other.apply(record(.expire, "x", id: "j", attempt: 1, counter: -1, ref: "e"), at: t0)
        _ = other.apply(heartbeat("w", counter: 1, runs: [("j", 1)], ref: "late"), at: t0)
        XCTAssertEqual(other.jobs["j"]?.state, .queued)
    }

    func testAJobWaitingForItsNextAttemptIsNumberedAlikeByEveryReader() {
        // Reader A saw attempt 1 expire; the requeue then waits in the queue past A's window.
        var a = LedgerState(retention: 100)
        _ = a.apply(record(.claim, "w1", id: "j", ref: "c1"), at: t0)
        _ = a.apply(record(.expire, "w2", id: "j", attempt: 1, counter: -1, ref: "x1"), at: t0.addingTimeInterval(10))
        for second in stride(from: 20.0, through: 400, by: 20) { _ = a.apply(.other, at: t0.addingTimeInterval(second)) }
        // Reader B starts after all that; both read the claim of the requeued message.
        var b = LedgerState(retention: 100)
        guard case .record(var claim) = record(.claim, "w3", id: "j", ref: "c2") else { return XCTFail() }
        claim.requeuedAfter = 1
        claim.expiries = 1
        let fromA = a.apply(.record(claim), at: t0.addingTimeInterval(401))
        let fromB = b.apply(.record(claim), at: t0.addingTimeInterval(401))
        XCTAssertEqual(fromA, [.claimDecided(ref: "c2", id: "j", outcome: .won(attempt: 2))])
        XCTAssertEqual(fromB, fromA, "a reader that forgot or never saw attempt 1 numbers the next one alike")
        XCTAssertEqual(a.jobs["j"]?.expiries, 1)
        XCTAssertEqual(b.jobs["j"]?.expiries, 1, "and counts the same expiries against delivery_limit")
    }

    /// A job given back for a machine's fault, its requeue waiting past a reader's window:
    /// before, that reader counted no machine-fault release and granted another retry
    /// (adversarial review). The requeued message's claim carries the count, and so does a carry.
    func testMachineFaultReleasesAreCountedAlikeByAReaderThatNeverSawThem() {
        var a = LedgerState(retention: 100)
        _ = a.apply(record(.claim, "w1", id: "j", ref: "c1"), at: t0)
        guard case .record(var release) = record(.release, "w1", id: "j", attempt: 1, ref: "r1") else { return XCTFail() }
        release.reason = "gpu_error"
        let released = a.apply(.record(release), at: t0.addingTimeInterval(5))
        guard case .expiryDecided(_, _, true, let requeue?)? = released.last else { return XCTFail("\(released)") }
        XCTAssertEqual(requeue.machineFaults, 1, "the requeued message says so")
        // A release without a reason (a shutdown) counts nothing.
        var b = LedgerState(retention: 100)
        guard case .record(var claim) = record(.claim, "w3", id: "j", ref: "c2") else { return XCTFail() }
        claim.requeuedAfter = 1
        claim.machineFaults = requeue.machineFaults
        _ = a.apply(.record(claim), at: t0.addingTimeInterval(401))
        _ = b.apply(.record(claim), at: t0.addingTimeInterval(401))
        XCTAssertEqual(a.jobs["j"]?.machineFaults, 1)
        XCTAssertEqual(b.jobs["j"]?.machineFaults, 1, "a reader that never saw the release")
        var c = LedgerState(retention: 100)
        var carry = LedgerRecord(kind: .carry, worker: "w3", at: t0, ref: "k", id: "j", attempt: 2)
        carry.job = "{}"
        carry.machineFaults = 1
        _ = c.apply(.record(carry), at: t0.addingTimeInterval(500))
        XCTAssertEqual(c.jobs["j"]?.machineFaults, 1, "a reader that knows the run from its carry")
        var d = LedgerState(retention: 100)
        _ = d.apply(record(.claim, "w1", id: "j", ref: "c1"), at: t0)
        _ = d.apply(record(.release, "w1", id: "j", attempt: 1, ref: "r1"), at: t0.addingTimeInterval(5))
        XCTAssertEqual(d.jobs["j"]?.machineFaults, 0)
    }

    func testABrokenDuplicateDoesNotEndAJobWaitingForItsNextAttempt() {
        _ = apply(record(.claim, "w1", id: "j", ref: "c1"))
        _ = apply(record(.expire, "w2", id: "j", attempt: 1, counter: -1, ref: "x1"))
        var rejection = LedgerRecord(kind: .end, worker: "w3", at: t0, ref: "bad", id: "j", attempt: 0)
        rejection.result = JobEvent(id: "j", task: "t2v-A14B", event: .failed, worker: "w3")
        guard case .endDecided(_, _, false, _)? = apply(.record(rejection)).first else { return XCTFail("the rejection ended a requeued job") }
        XCTAssertEqual(state.jobs["j"]?.state, .queued)
    }

    func testACarryTeachesALateReaderEveryReplyToAndTheRenewalCounter() {
        // The claim (reply R1) and an attached duplicate (R2) are before this reader's window.
        var carry = LedgerRecord(kind: .carry, worker: "w", at: t0, ref: "k", id: "long", attempt: 1)
        carry.job = #"{"id":"long","task":"t2v-A14B","params":{}}"#
        carry.replyTo = "R1"
        carry.correlationID = "a"
        carry.replies = [.init(replyTo: "R1", correlationID: "a"), .init(replyTo: "R2", correlationID: "b")]
        carry.counter = 12
        _ = apply(.record(carry))
        XCTAssertEqual(state.jobs["long"]?.replies.map(\.replyTo), ["R1", "R2"])
        XCTAssertEqual(state.jobs["long"]?.renewCounter, 12, "an expiry naming heartbeat 12 is judged alike by every reader")
    }

    func testExcusesStopCountingForAJobThatCutsEveryOwnerOff() {
        for n in 1...6 {
            _ = apply(record(.claim, "w\(n)", id: "flood", ref: "c\(n)"))
            _ = apply(heartbeat("w\(n)", life: "L\(n)", counter: 1, runs: [("flood", n)], ref: "h\(n)a"))
            _ = apply(record(.expire, "x", id: "flood", attempt: n, counter: 1, ref: "x\(n)"))
            _ = apply(heartbeat("w\(n)", life: "L\(n)", counter: 2, runs: [], ref: "h\(n)b"))
        }
        XCTAssertEqual(state.jobs["flood"]?.expiries, 0)
        XCTAssertEqual(state.jobs["flood"]?.excused, 6, "counted by the intake past topology.delivery_limit (JobIntakeTests)")
    }

    func testAWorkersFoldKeepsOfAnEndedJobWhatItsDecisionsNeed() {
        var slim = LedgerState(retention: 3600, detail: .decisions)
        _ = slim.apply(record(.claim, "w1", id: "j", ref: "c1"), at: t0)
        _ = apply(record(.claim, "w1", id: "j", ref: "c1"))
        var r = LedgerRecord(kind: .end, worker: "w1", at: t0, ref: "e1", id: "j", attempt: 1)
        r.result = JobEvent(id: "j", task: "t2v-A14B", event: .completed, worker: "w1")
        r.result?.logTail = ["a line", "another"]
        r.result?.output = "/out/j.mp4"
        guard case .endDecided(_, _, true, let replies)? = slim.apply(.record(r), at: t0).first else { return XCTFail() }
        XCTAssertEqual(replies.map(\.replyTo), ["reply-c1"], "the result still reaches every reply_to")
        _ = apply(.record(r))
        XCTAssertNil(slim.jobs["j"]?.result?.logTail, "a worker keeps no log tail")
        XCTAssertEqual(slim.jobs["j"]?.result?.output, "/out/j.mp4", "but the result a duplicate is answered with")
        XCTAssertEqual(state.jobs["j"]?.result?.logTail ?? [], ["a line", "another"], "the dashboard and the CLI keep it")
        guard case .claimDecided(_, _, .ended(let answer))? = slim.apply(record(.claim, "w2", id: "j", ref: "c2"), at: t0).first else {
            return XCTFail()
        }
        XCTAssertEqual(answer.status, .completed)
    }

    func testAReleaseRequeuesWithoutCountingAnAttemptAndOnlyFromTheOwner() {
        _ = apply(record(.claim, "w1", id: "j", ref: "c1"))
        guard case .expiryDecided(_, _, false, _)? = apply(record(.release, "w2", id: "j", attempt: 1, ref: "r0")).first else { return XCTFail() }
        guard case .expiryDecided(_, _, true, _)? = apply(record(.release, "w1", id: "j", attempt: 1, ref: "r1")).last else { return XCTFail() }
        XCTAssertEqual(state.jobs["j"]?.expiries, 0)
        XCTAssertEqual(state.jobs["j"]?.attempts.last?.outcome, .released)
    }

    func testOverdueListsLiveAttemptsNotRenewedForALease() {
        _ = apply(record(.claim, "w1", id: "a", ref: "c1"))
        _ = apply(record(.claim, "w2", id: "b", ref: "c2"), at: 50)
        _ = apply(heartbeat("w1", counter: 3, runs: [("a", 1)], ref: "h"), at: 60)
        XCTAssertTrue(state.overdue(at: t0.addingTimeInterval(150), lease: 120).isEmpty)
        XCTAssertEqual(state.overdue(at: t0.addingTimeInterval(171), lease: 120).map(\.id), ["b"])
        let both = state.overdue(at: t0.addingTimeInterval(181), lease: 120)
        XCTAssertEqual(both.map(\.id), ["a", "b"])
        XCTAssertEqual(both.map(\.counter), [3, -1])
    }

    func testAReplayedRenewalCountsAsSeenNowAndKeepsItsOwnDate() {
        var r = LedgerRecord(kind: .claim, worker: "w1", at: t0, ref: "c", id: "j")
        r.job = "{}"
        _ = state.apply(.record(r), at: t0.addingTimeInterval(1000), live: false)
        XCTAssertEqual(state.jobs["j"]?.attempts.last?.claimedAt, t0, "what people read is the writer's date")
        XCTAssertEqual(state.jobs["j"]?.renewedAt, t0.addingTimeInterval(1000), "a lease runs from when this side saw it")
        XCTAssertTrue(state.overdue(at: t0.addingTimeInterval(1000), lease: 120).isEmpty)
        XCTAssertEqual(state.overdue(at: t0.addingTimeInterval(1121), lease: 120).map(\.id), ["j"])
    }

    func testNoLeaseDecisionReadsAWritersClock() {
        // w1's clock is a day ahead, w2's a day behind; the folding side's own time alone
        // decides, live or replayed.
        for (skew, live) in [(86_400.0, true), (-86_400.0, true), (86_400.0, false), (-86_400.0, false)] {
            state = LedgerState(retention: 24 * 3600)
            var claim = LedgerRecord(kind: .claim, worker: "w1", at: t0.addingTimeInterval(skew), ref: "c", id: "j")
            claim.job = "{}"
            _ = state.apply(.record(claim), at: t0, live: live)
            var beat = LedgerRecord(kind: .heartbeat, worker: "w1", at: t0.addingTimeInterval(skew + 100), ref: "h")
            beat.counter = 1
            beat.runs = [HeartbeatRun(id: "j", attempt: 1)]
            _ = state.apply(.record(beat), at: t0.addingTimeInterval(100), live: live)
            XCTAssertTrue(state.overdue(at: t0.addingTimeInterval(219), lease: 120).isEmpty, "skew \(skew), live \(live)")
            XCTAssertEqual(state.overdue(at: t0.addingTimeInterval(221), lease: 120).map(\.counter), [1], "skew \(skew), live \(live)")
        }
    }

    func testALateDuplicateHeartbeatDoesNotLowerTheCounter() {
        _ = apply(record(.claim, "w1", id: "j", ref: "c"))
        _ = apply(heartbeat("w1", counter: 5, runs: [("j", 1)], ref: "h5"), at: 10)
        _ = apply(heartbeat("w1", counter: 4, runs: [("j", 1)], ref: "h4"), at: 11)
        XCTAssertEqual(state.jobs["j"]?.renewCounter, 5)
        // An expiry naming the newest renewal counts; one naming the older does not.
        XCTAssertEqual(
            apply(record(.expire, "w2", id: "j", attempt: 1, counter: 4, ref: "x4"), at: 200).first,
            .expiryDecided(ref: "x4", id: "j", valid: false, requeue: nil))
        XCTAssertEqual(
            apply(record(.expire, "w2", id: "j", attempt: 1, counter: 5, ref: "x5"), at: 201).first, .attemptLost(id: "j", attempt: 1, worker: "w1"))
    }

    func testASecondCopyOfARecordChangesNothing() {
        // Records not seen back are written again: the fold must ignore the copy.
        _ = apply(record(.claim, "w1", id: "j", ref: "c"))
        XCTAssertEqual(apply(record(.claim, "w1", id: "j", ref: "c"), at: 1), [.claimDecided(ref: "c", id: "j", outcome: .attached)])
        XCTAssertEqual(state.jobs["j"]?.attempts.count, 1)
        XCTAssertEqual(state.jobs["j"]?.replies.count, 1)
        _ = apply(end("w1", id: "j", attempt: 1, ref: "e"), at: 2)
        guard case .endDecided(_, _, let counted, _)? = apply(end("w1", id: "j", attempt: 1, ref: "e"), at: 3).first else { return XCTFail() }
        XCTAssertFalse(counted, "the copy of an end is not a second result")
        _ = apply(record(.claim, "w2", id: "k", ref: "c2"), at: 4)
        _ = apply(record(.expire, "w3", id: "k", attempt: 1, counter: -1, ref: "x"), at: 200)
        XCTAssertEqual(
            apply(record(.expire, "w3", id: "k", attempt: 1, counter: -1, ref: "x"), at: 201),
            [.expiryDecided(ref: "x", id: "k", valid: false, requeue: nil)])
        XCTAssertEqual(state.jobs["k"]?.expiries, 1)
    }

    func testCancelsAreKeptPerJobWithTheirUsers() {
        XCTAssertEqual(apply(.cancelled(id: "j", user: "bob")), [.cancelRequested(id: "j", user: "bob", attempt: nil)])
        XCTAssertFalse(state.jobs["j"]!.known, "a cancel alone does not make a job known to status")
        _ = apply(record(.claim, "w1", id: "j", ref: "c"))
        XCTAssertTrue(state.jobs["j"]!.isCancelled { $0 == "bob" })
        XCTAssertFalse(state.jobs["j"]!.isCancelled { $0 == "eve" })
    }

    func testEndedJobsAndSilentWorkersAreForgottenAfterTheRetention() {
        var small = LedgerState(retention: 100)
        _ = small.apply(heartbeat("w1", counter: 1, runs: [], ref: "h"), at: t0)
        var r = LedgerRecord(kind: .claim, worker: "w1", at: t0, ref: "c", id: "done")
        r.job = "{}"
        _ = small.apply(.record(r), at: t0)
        _ = small.apply(end("w1", id: "done", attempt: 1, ref: "e"), at: t0)
        r.id = "running"
        r.ref = "c2"
        _ = small.apply(.record(r), at: t0)
        _ = small.apply(.other, at: t0.addingTimeInterval(200))
        XCTAssertNil(small.jobs["done"])
        XCTAssertNotNil(small.jobs["running"], "a live attempt stays until it ends or expires")
        XCTAssertTrue(small.workers.isEmpty)
    }

    func testReadsSubmissionsCancelsAndRecordsByTheirExchange() {
        let topology = WorkerConfiguration.TopologySection()
        let job = Array(#"{"id":"x1","task":"ti2v-5B","params":{}}"#.utf8)
        XCTAssertEqual(
            LedgerEntry.read(
                exchange: topology.jobsExchange, properties: .init(userID: "alice"), body: job, topology: topology, writers: ["genworker"]),
            .submitted(id: "x1", task: "ti2v-5B", submitter: "alice", at: nil))
        XCTAssertEqual(
            LedgerEntry.read(
                exchange: topology.cancelExchange, properties: .init(userID: "bob"), body: Array(#"{"id":"x1"}"#.utf8), topology: topology,
                writers: ["genworker"]),
            .cancelled(id: "x1", user: "bob"))
        let record = LedgerRecord(kind: .marker, worker: "w", at: t0, ref: "m")
        XCTAssertEqual(
            LedgerEntry.read(exchange: "", properties: .init(), body: try! ProtocolCoding.encode(record), topology: topology, writers: ["genworker"]),
            .record(record))
        XCTAssertEqual(
            LedgerEntry.read(exchange: "", properties: .init(), body: Array("garbage".utf8), topology: topology, writers: ["genworker"]), .other)
        XCTAssertEqual(
            LedgerEntry.read(
                exchange: topology.jobsExchange, properties: .init(), body: Array(#"{"id":"../x"}"#.utf8), topology: topology, writers: ["genworker"]),
            .other)
    }

    func testOnlyTheLedgerWritersRecordsCount() {
        let topology = WorkerConfiguration.TopologySection()
        var end = LedgerRecord(kind: .end, worker: "w1", at: t0, ref: "e", id: "j", attempt: 1)
        end.result = JobEvent(id: "j", task: "t2v-A14B", event: .completed, worker: "w1")
        let body = try! ProtocolCoding.encode(end)
        let read = { (user: String?, writers: Set<String>?) in
            LedgerEntry.read(exchange: "", properties: .init(userID: user), body: body, topology: topology, writers: writers)
        }
        XCTAssertEqual(read("genworker", ["genworker"]), .record(end))
        XCTAssertEqual(read("mallory", ["genworker"]), .forged(end, user: "mallory"))
        XCTAssertEqual(read(nil, ["genworker"]), .forged(end, user: nil), "a record without user_id is nobody's")
        XCTAssertEqual(read("mallory", nil), .record(end), "ledger_writers: [*]")
        // A forged end for a running job changes nothing, and is counted.
        _ = apply(record(.claim, "w1", id: "j", ref: "c"))
        XCTAssertEqual(apply(read("mallory", ["genworker"]), at: 1), [])
        XCTAssertEqual(state.jobs["j"]?.state, .running)
        XCTAssertEqual(state.forged, 1)
        // Markers count from anyone: they only tell their own reader it has caught up.
        let marker = LedgerRecord(kind: .marker, worker: "genworker-cli", at: t0, ref: "m")
        XCTAssertEqual(
            LedgerEntry.read(
                exchange: "", properties: .init(userID: "alice"), body: try! ProtocolCoding.encode(marker), topology: topology, writers: ["genworker"]
            ),
            .record(marker))
    }

    func testAClaimOfTheLargestAllowedBodyIsReadBack() {
        // A 1 MiB body (jobs.max_body_bytes) of quotes doubles when the claim escapes it: the
        // claim must still be read, or it never comes back and holds its slot.
        let configuration = WorkerConfiguration()
        var claim = LedgerRecord(kind: .claim, worker: "w1", at: t0, ref: "big", id: "j")
        claim.job = String(repeating: "\"", count: configuration.jobs.maxBodyBytes)
        let body = try! ProtocolCoding.encode(claim)
        XCTAssertGreaterThan(body.count, 2 << 20)
        let entry = LedgerEntry.read(
            exchange: "", properties: .init(userID: "guest"), body: body, topology: configuration.topology, writers: ["guest"],
            maxBytes: configuration.ledgerRecordLimit)
        XCTAssertEqual(entry, .record(claim))
    }
}
