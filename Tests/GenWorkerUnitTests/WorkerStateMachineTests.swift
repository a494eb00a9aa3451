import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// The worker's decisions under adversarial orders, without a broker: the machine is told what
/// happened and its actions are checked. Time is given, never read.
final class WorkerStateMachineTests: XCTestCase {
    let base = ContinuousClock.now
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ seconds: Double) -> WorkerStateMachine.Now {
        .init(monotonic: base + .milliseconds(Int64(seconds * 1000)), steady: t0.addingTimeInterval(seconds), wall: t0.addingTimeInterval(seconds))
    }

    func machine(slots: Int = 1, name: String = "w1", _ configure: (inout WorkerConfiguration) -> Void = { _ in }) -> WorkerStateMachine {
        var c = WorkerConfiguration()
        c.worker.name = name
        c.worker.slots = slots
        c.jobs.leaseSeconds = 40  // renew every 10 s, fence after 36 − grace
        c.supervisor.graceSeconds = 2
        c.topology.deliveryLimit = 2
        c.shutdown.drainTimeoutSeconds = 60
        configure(&c)
        return WorkerStateMachine(configuration: c)
    }

    func incoming(_ tag: UInt64, _ id: String, replyTo: String? = nil, correlationID: String? = nil) -> WorkerStateMachine.Incoming {
        let job = JobRequest(id: id, task: .t2vA14B, parameters: [JobParameter("prompt", .text("p"))], timeout: .seconds(60))
        return .init(
            tag: tag, validation: .success(job), body: #"{"id":"\#(id)","task":"t2v-A14B"}"#, submitter: nil, redelivered: false,
            replyTo: replyTo, correlationID: correlationID, sentAt: nil)
    }

    func writes(_ actions: [WorkerStateMachine.Action]) -> [LedgerRecord] {
        actions.compactMap { if case .write(let r) = $0 { r } else { nil } }
    }

    func stops(_ actions: [WorkerStateMachine.Action]) -> [StopRequest] {
        actions.compactMap { if case .stop(_, let reason) = $0 { reason } else { nil } }
    }

    func starts(_ actions: [WorkerStateMachine.Action]) -> [WorkerStateMachine.RunStart] {
        actions.compactMap { if case .start(let s) = $0 { s } else { nil } }
    }

    func published(_ actions: [WorkerStateMachine.Action]) -> [WorkerStateMachine.Outgoing] {
        actions.flatMap { action -> [WorkerStateMachine.Outgoing] in
            if case .publishResults(let items) = action { return items }
            return []
        }
    }

    /// Folds back what `actions` wrote, in order: the ledger's echo of this worker's writes.
    func echo(_ m: inout WorkerStateMachine, _ actions: [WorkerStateMachine.Action], at seconds: Double) -> [WorkerStateMachine.Action] {
        writes(actions).flatMap { m.fold(.record($0), now: at(seconds)) }
    }

    /// Connected and caught up at `seconds`.
    func ready(_ m: inout WorkerStateMachine, at seconds: Double = 0) -> [WorkerStateMachine.Action] {
        let connect = m.connected(node: "n1", now: at(seconds))
        return connect + echo(&m, connect, at: seconds)
    }

    /// A delivery of `id` claimed and won at `seconds`: returns the run's number.
    func run(_ m: inout WorkerStateMachine, _ id: String, tag: UInt64, at seconds: Double) -> UInt64? {
        let claim = m.receive(incoming(tag, id), now: at(seconds))
        return starts(echo(&m, claim, at: seconds)).first?.run
    }

    /// `id` claimed at `seconds`, completed a second later, its result confirmed by the broker.
    func completed(_ m: inout WorkerStateMachine, _ id: String, tag: UInt64, at seconds: Double) {
        let number = run(&m, id, tag: tag, at: seconds)!
        let end = m.runFinished(number, event: JobEvent(id: id, task: "t2v-A14B", event: .completed, worker: "w1"), now: at(seconds + 1))
        _ = m.resultsPublished(published(echo(&m, end, at: seconds + 1)), accepted: [true], now: at(seconds + 1))
    }

    func testAClaimRunsOnceItComesBackAndTheDeliveryIsAckedThen() {
        var m = machine()
        XCTAssertTrue(ready(&m).contains(.consume(true)))
        let claim = m.receive(incoming(7, "a"), now: at(1))
        XCTAssertEqual(writes(claim).map(\.kind), [.claim])
        XCTAssertTrue(claim.contains(.consume(false)), "the only slot is held: stop taking jobs")
        XCTAssertFalse(claim.contains(.ack(deliveryTag: 7)), "not acked before the ledger decided")
        let decided = echo(&m, claim, at: 1.1)
        XCTAssertEqual(decided.first, .ack(deliveryTag: 7))
        XCTAssertEqual(starts(decided).map(\.attempt), [1])
    }

    func testTheFenceStopsARunWhoseRenewalsStopComingBackAndItPublishesNothing() {
        var m = machine()
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        // Heartbeats are written but never come back (a partition in one direction).
        var now = 1.0
        var stopped: [StopRequest] = []
        while now < 40, stopped.isEmpty {
            now += 1
            stopped = stops(m.tick(now: at(now)).actions)
        }
        XCTAssertEqual(stopped, [.ownershipLost])
        XCTAssertEqual(now, 36, accuracy: 1, "stopped at 0.9 × lease − grace after the last renewal")
        let after = m.runFinished(number, event: nil, now: at(now + 1))
        XCTAssertTrue(writes(after).isEmpty, "a fenced run writes no end")
        XCTAssertTrue(after.contains(.discardRun(id: "a", attempt: 1)))
    }

    func testRenewalsThatComeBackKeepTheRunAndTheWatchdogDeadlineMoves() {
        var m = machine()
        _ = ready(&m)
        _ = run(&m, "a", tag: 1, at: 1)
        for second in stride(from: 2.0, through: 120, by: 1) {
            let actions = m.tick(now: at(second)).actions
            XCTAssertTrue(stops(actions).isEmpty, "stopped at \(second) although renewed")
            let echoed = echo(&m, actions, at: second + 0.05)
            if !writes(actions).isEmpty, case .armWatchdog(let deadline?)? = echoed.last {
                XCTAssertEqual((deadline - base).inSeconds, second + 38, accuracy: 0.01, "lease − lease/20 after the renewal")
            }
        }
    }

    func testAResultIsPublishedOnlyWhenItsEndCountsAndARefusingReplyToBlocksNothing() {
        var m = machine()
        _ = ready(&m)
        let claim = m.receive(incoming(1, "a", replyTo: "full", correlationID: "c1"), now: at(1))
        let number = starts(echo(&m, claim, at: 1))[0].run
        var done = JobEvent(id: "a", task: "t2v-A14B", event: .completed, worker: "w1")
        done.output = "/out/a.mp4"
        let end = m.runFinished(number, event: done, now: at(5))
        XCTAssertEqual(writes(end).map(\.kind), [.end])
        XCTAssertTrue(published(end).isEmpty, "nothing goes out before the ledger took the end")
        let counted = echo(&m, end, at: 5.1)
        XCTAssertTrue(counted.contains(.promote(id: "a", attempt: 1)))
        let items = published(counted)
        XCTAssertEqual(items.map(\.destination), [.results, .reply(.init(replyTo: "full", correlationID: "c1"))])
        // The reply_to refuses; the results queue confirms: neither is sent again.
        XCTAssertFalse(
            m.resultsPublished(items, accepted: [true, false], now: at(5.2)).contains { if case .publishResults = $0 { true } else { false } })
        XCTAssertTrue(m.outbox.isEmpty)
        for second in stride(from: 6.0, through: 30, by: 1) { XCTAssertTrue(published(m.tick(now: at(second)).actions).isEmpty) }
    }

    func testARefusedResultIsTriedAgainLaterWithoutHoldingUpTheNext() {
        var m = machine(slots: 2)
        _ = ready(&m)
        let a = run(&m, "a", tag: 1, at: 1)!
        let b = run(&m, "b", tag: 2, at: 1)!
        let first = published(echo(&m, m.runFinished(a, event: JobEvent(id: "a", task: "t2v-A14B", event: .failed, worker: "w1"), now: at(2)), at: 2))
        XCTAssertEqual(first.map(\.event.id), ["a"])
        _ = m.resultsPublished(first, accepted: [false], now: at(2))
        let second = published(
            echo(&m, m.runFinished(b, event: JobEvent(id: "b", task: "t2v-A14B", event: .completed, worker: "w1"), now: at(3)), at: 3))
        XCTAssertEqual(second.map(\.event.id), ["b"], "b goes out while a waits")
        _ = m.resultsPublished(second, accepted: [true], now: at(3))
        XCTAssertEqual(published(m.tick(now: at(7.5)).actions).map(\.event.id), ["a"], "a again 5 s after the refusal")
    }

    func testADuplicateAfterTheEndIsAnsweredOnItsReplyToOnly() {
        var m = machine()
        _ = ready(&m)
        completed(&m, "a", tag: 1, at: 1)
        let again = echo(&m, m.receive(incoming(2, "a", replyTo: "late", correlationID: "x"), now: at(3)), at: 3)
        XCTAssertTrue(starts(again).isEmpty)
        XCTAssertEqual(published(again).map(\.destination), [.reply(.init(replyTo: "late", correlationID: "x"))])
    }

    func testALostWriteIsWrittenAgainUntilItComesBack() {
        var m = machine()
        _ = ready(&m)
        let claim = m.receive(incoming(1, "a"), now: at(1))
        let record = writes(claim)[0]
        XCTAssertTrue(writes(m.tick(now: at(3)).actions).filter { $0.ref == record.ref }.isEmpty)
        XCTAssertEqual(writes(m.tick(now: at(6.1)).actions).filter { $0.ref == record.ref }.count, 1, "written again after 5 s")
        _ = m.fold(.record(record), now: at(6.2))
        XCTAssertTrue(writes(m.tick(now: at(20)).actions).filter { $0.ref == record.ref }.isEmpty, "not once it came back")
    }

    func testRecordsWrittenWhileDisconnectedGoOutAfterTheCatchUp() {
        var m = machine()
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        _ = m.connectionLost()
        let end = m.runFinished(number, event: JobEvent(id: "a", task: "t2v-A14B", event: .completed, worker: "w1"), now: at(2))
        XCTAssertTrue(writes(end).isEmpty, "no connection: kept")
        let connect = m.connected(node: "n2", now: at(3))
        XCTAssertEqual(writes(connect).map(\.kind), [.marker], "the end waits for the catch-up")
        let caughtUp = echo(&m, connect, at: 3)
        XCTAssertEqual(writes(caughtUp).map(\.kind).filter { $0 != .heartbeat }, [.end])
        XCTAssertEqual(published(echo(&m, caughtUp, at: 3.1)).map(\.event.id), ["a"])
    }

    func testAConnectionLostWhileClaimingFreesTheSlotAndTheClaimIsNotWrittenAgain() {
        var m = machine()
        _ = ready(&m)
        _ = m.receive(incoming(1, "a"), now: at(1))
        XCTAssertEqual(m.intake.busySlots, 1)
        _ = m.connectionLost()
        XCTAssertEqual(m.intake.busySlots, 0)
        let caughtUp = echo(&m, m.connected(node: "n1", now: at(2)), at: 2)
        XCTAssertFalse(writes(caughtUp).contains { $0.kind == .claim }, "the delivery went back to the queue with the connection")
        XCTAssertTrue(caughtUp.contains(.consume(true)))
    }

    func testARestartUnderTheSameNameExpiresTheEarlierLifesAttemptAtOnce() {
        var earlier = LedgerRecord(kind: .claim, worker: "w1", at: t0, ref: "old-claim", id: "a")
        earlier.job = "{}"
        var m = machine()
        let connect = m.connected(node: "n1", now: at(0))
        _ = m.fold(.record(earlier), now: at(0.1))
        let caughtUp = echo(&m, connect, at: 0.2)
        let expiry = writes(caughtUp).first { $0.kind == .expire }
        XCTAssertEqual(expiry?.id, "a")
        XCTAssertEqual(expiry?.attempt, 1)
        // It counts; this worker requeues the job.
        let requeue = m.fold(.record(expiry!), now: at(0.3))
        XCTAssertTrue(requeue.contains { if case .requeue(let r) = $0 { r.id == "a" } else { false } })
        // Only once per process life: a later catch-up expires nothing of its own.
        _ = m.connectionLost()
        let again = echo(&m, m.connected(node: "n1", now: at(5)), at: 5)
        XCTAssertFalse(writes(again).contains { $0.kind == .expire })
    }

    func testAValidRequeueLostWithTheConnectionIsSentAgainAndShutdownWaitsForIt() {
        var m = machine()
        _ = ready(&m)
        var other = LedgerRecord(kind: .claim, worker: "w2", at: t0, ref: "c2", id: "b")
        other.job = "{}"
        _ = m.fold(.record(other), now: at(1))
        let proposals = m.tick(now: at(42)).actions
        let expiry = writes(proposals).first { $0.kind == .expire }!
        XCTAssertEqual(expiry.id, "b")
        XCTAssertEqual(m.fold(.record(expiry), now: at(42.1)).compactMap { if case .requeue(let r) = $0 { r.id } else { nil } }, ["b"])
        _ = m.connectionLost()
        let caughtUp = echo(&m, m.connected(node: "n1", now: at(43)), at: 43)
        XCTAssertEqual(caughtUp.compactMap { if case .requeue(let r) = $0 { r.id } else { nil } }, ["b"], "sent again")
        m.requestShutdown(.drain)
        XCTAssertFalse(m.tick(now: at(44)).done, "waits for the requeue's confirm")
        _ = m.requeued("b", accepted: true, now: at(44.1))
        XCTAssertTrue(m.tick(now: at(44.2)).done)
    }

    func testCancels() {
        var m = machine()
        _ = ready(&m)
        // Before the claim: the claim wins and ends at once, cancelled before start.
        _ = m.fold(.cancelled(id: "a", user: nil), now: at(1))
        let claim = m.receive(incoming(1, "a"), now: at(2))
        let decided = echo(&m, claim, at: 2)
        XCTAssertTrue(starts(decided).isEmpty)
        XCTAssertEqual(writes(decided).first { $0.kind == .end }?.result?.reason, .cancelledBeforeStart)
        // While running: the run is stopped once, however often the cancel is heard.
        let number = run(&m, "b", tag: 2, at: 3)!
        XCTAssertEqual(stops(m.fold(.cancelled(id: "b", user: nil), now: at(4))), [.cancelled])
        XCTAssertEqual(stops(m.fold(.cancelled(id: "b", user: nil), now: at(4.1))), [])
        // After the end: nothing to stop.
        _ = echo(&m, m.runFinished(number, event: JobEvent(id: "b", task: "t2v-A14B", event: .cancelled, worker: "w1"), now: at(5)), at: 5)
        XCTAssertEqual(stops(m.fold(.cancelled(id: "b", user: nil), now: at(6))), [])
    }

    func testEndsReleasesAndExpiriesOfOtherAttemptsChangeNothingHere() {
        var m = machine()
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        var wrongEnd = LedgerRecord(kind: .end, worker: "w1", at: t0, ref: "x1", id: "a", attempt: 2)
        wrongEnd.result = JobEvent(id: "a", task: "t2v-A14B", event: .failed, worker: "w1")
        let release = LedgerRecord(kind: .release, worker: "w2", at: t0, ref: "x2", id: "a", attempt: 1)
        var staleExpiry = LedgerRecord(kind: .expire, worker: "w2", at: t0, ref: "x3", id: "a", attempt: 0)
        staleExpiry.counter = -1
        for record in [wrongEnd, release, staleExpiry] {
            let actions = m.fold(.record(record), now: at(2))
            XCTAssertTrue(stops(actions).isEmpty, "\(record.kind)")
            XCTAssertTrue(published(actions).isEmpty, "\(record.kind)")
        }
        XCTAssertNotNil(m.runs[number])
        // An expiry of the live attempt naming its last renewal does stop it.
        var expiry = LedgerRecord(kind: .expire, worker: "w2", at: t0, ref: "x4", id: "a", attempt: 1)
        expiry.counter = -1
        XCTAssertEqual(stops(m.fold(.record(expiry), now: at(3))), [.ownershipLost])
    }

    func testShutdownDrainsThenRequeuesAndGivesUpOnASilentBroker() {
        var m = machine(slots: 2)
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        m.requestShutdown(.drain)
        let first = m.tick(now: at(2))
        XCTAssertTrue(first.actions.contains(.consume(false)), "no more jobs")
        XCTAssertTrue(stops(first.actions).isEmpty, "a drain lets the run finish")
        XCTAssertFalse(first.done)
        // The broker answers (renewals come back) until the drain times out.
        var stopped: [StopRequest] = []
        for second in stride(from: 3.0, through: 63, by: 1) {
            let actions = m.tick(now: at(second)).actions
            _ = echo(&m, actions, at: second)
            stopped += stops(actions)
        }
        XCTAssertEqual(stopped, [.shutdown], "past shutdown.drain_timeout_s the run is stopped to be given back")
        let released = m.runFinished(number, event: nil, now: at(64))
        XCTAssertEqual(writes(released).map(\.kind), [.release])
        // From here the broker is silent: the worker stops anyway, 2 × grace + 10 s later.
        XCTAssertFalse(m.tick(now: at(65)).done)
        XCTAssertFalse(m.tick(now: at(70)).done)
        XCTAssertTrue(m.tick(now: at(65 + 2 * 2 + 10 + 1)).done)
    }

    func testABacklogNeverMakesTheWorkerTakeMoreThanItsSlots() {
        var m = machine(slots: 2)
        _ = ready(&m)
        let one = m.receive(incoming(1, "a"), now: at(1))
        XCTAssertFalse(one.contains(.consume(false)), "a slot is still free")
        let two = m.receive(incoming(2, "b"), now: at(1))
        XCTAssertTrue(two.contains(.consume(false)))
        // A delivery already in flight is given back untouched (no attempt counted anywhere).
        XCTAssertEqual(m.receive(incoming(3, "c"), now: at(1)), [.settle(deliveryTag: 3, requeue: true)])
        let a = starts(echo(&m, one, at: 1.1))[0].run
        _ = echo(&m, two, at: 1.1)
        let freed = m.runFinished(a, event: JobEvent(id: "a", task: "t2v-A14B", event: .completed, worker: "w1"), now: at(2))
        XCTAssertTrue(m.tick(now: at(2)).actions.contains(.consume(true)) || freed.contains(.consume(true)))
    }

    func testBelowTheOutputsFloorTheWorkerTakesNoNewJobsAndTakesThemAgainAfter() {
        var m = machine(slots: 2)
        _ = ready(&m)
        XCTAssertEqual(m.outputsSpace(freeMB: 5000, floorMB: 1000), [], "room: nothing changes")
        let low = m.outputsSpace(freeMB: 900, floorMB: 1000)
        XCTAssertTrue(low.contains(.consume(false)), "\(low)")
        XCTAssertEqual(m.outputsSpace(freeMB: 800, floorMB: 1000), [], "told once")
        // A delivery already in flight goes back untouched, for a worker with room.
        XCTAssertEqual(m.receive(incoming(1, "a"), now: at(1)), [.settle(deliveryTag: 1, requeue: true)])
        XCTAssertFalse(m.tick(now: at(2)).actions.contains(.consume(true)))
        XCTAssertTrue(m.outputsSpace(freeMB: 1200, floorMB: 1000).contains(.consume(true)))
    }

    /// Finding 10's first lead (docs/reliability.md), refuted: an expiry proposed during a
    /// partition and made invalid by the owner's delayed heartbeats is proposed again a lease later.
    func testAnExpiryMadeInvalidByDelayedHeartbeatsIsProposedAgainAfterTheNextLease() {
        var m = machine()
        _ = ready(&m)
        var claim = LedgerRecord(kind: .claim, worker: "w2", at: t0, ref: "c", id: "a")
        claim.job = #"{"id":"a","task":"t2v-A14B"}"#
        _ = m.fold(.record(claim), now: at(1))
        // No renewal for a lease: this worker proposes an expiry (counter -1), not yet seen back.
        var expiries = writes(m.tick(now: at(45)).actions).filter { $0.kind == .expire }
        XCTAssertEqual(expiries.count, 1)
        XCTAssertEqual(expiries.first?.counter, -1)
        // The owner's heartbeats, delayed by the partition, fold first; then the expiry: invalid.
        var beat = LedgerRecord(kind: .heartbeat, worker: "w2", at: t0.addingTimeInterval(5), ref: "h1")
        beat.counter = 3
        beat.life = "L"
        beat.runs = [.init(id: "a", attempt: 1)]
        _ = m.fold(.record(beat), now: at(46))
        let decided = m.fold(.record(expiries[0]), now: at(46.1))
        XCTAssertFalse(decided.contains { if case .requeue = $0 { true } else { false } })
        // The owner fenced its run: its heartbeats no longer list the job. A lease later:
        var quiet = LedgerRecord(kind: .heartbeat, worker: "w2", at: t0.addingTimeInterval(50), ref: "h2")
        quiet.counter = 4
        quiet.life = "L"
        quiet.runs = []
        _ = m.fold(.record(quiet), now: at(50))
        expiries = writes(m.tick(now: at(100)).actions).filter { $0.kind == .expire }
        XCTAssertEqual(expiries.count, 1, "nobody proposes the expiry again: the job waits forever")
    }

    /// Finding 10 (docs/reliability.md): the worker whose expiry came first in the ledger was
    /// restarted before it read that expiry back, so nobody owed the requeue and the job sat in
    /// the ledger as queued with no message in any queue. Any caught-up worker now requeues a
    /// job given back whose requeue has not reached the jobs exchange a lease (and its
    /// stagger) later; a requeue that did reach it (a submission in the ledger) stops that.
    func testAValidExpiryWhoseWriterStoppedIsRequeuedByAnotherWorkerALeaseLater() {
        var m = machine(name: "w3")
        _ = ready(&m)
        // w1 (since restarted) expired both; its records are valid here, but not this worker's to requeue.
        givenBack(&m, "a", at: 42)
        givenBack(&m, "b", at: 42)
        // b's requeue did reach the jobs exchange (the ledger's copy of it): nothing owed for b.
        _ = m.fold(.submitted(id: "b", task: "t2v-A14B", submitter: nil, at: nil), now: at(43))
        XCTAssertEqual(requeues(m.tick(now: at(60)).actions), [], "within the lease the writer may still requeue")
        let due = requeues(m.tick(now: at(42 + 40 + 21)).actions)
        XCTAssertEqual(due.map(\.id), ["a"], "the job given back and never requeued is requeued, once")
        XCTAssertEqual(due.first?.after, 1)
        XCTAssertEqual(due.first?.body, #"{"id":"a","task":"t2v-A14B"}"#)
        XCTAssertEqual(requeues(m.tick(now: at(120)).actions), [], "not twice by one worker")
        _ = m.requeued("a", accepted: true, now: at(120.1))
        XCTAssertEqual(requeues(m.tick(now: at(300)).actions), [])
    }

    /// `worker.quarantine_after` failures in a row that blame the machine: no more jobs, the
    /// heartbeat says so, a completed job in between starts the count again, the probe ends it.
    func testMachineFaultsInARowQuarantineTheWorkerUntilTheProbePasses() {
        var m = machine {
            $0.worker.quarantineAfter = 2
            $0.jobs.machineFaultRetries = 0  // each fault ends its job: this test counts them
        }
        _ = ready(&m)
        func fail(_ id: String, tag: UInt64, at seconds: Double, _ reason: JobReason?, completed: Bool = false) -> [WorkerStateMachine.Action] {
            let number = run(&m, id, tag: tag, at: seconds)!
            var event = JobEvent(id: id, task: "t2v-A14B", event: completed ? .completed : .failed, worker: "w1")
            event.reason = reason
            return echo(&m, m.runFinished(number, event: event, now: at(seconds + 1)), at: seconds + 1)
        }
        _ = fail("a", tag: 1, at: 1, .gpuError)
        _ = fail("b", tag: 2, at: 3, nil, completed: true)
        _ = fail("c", tag: 3, at: 5, .gpuOutOfMemory)
        XCTAssertFalse(m.quarantined, "a completed job in between, and an OOM is the job's")
        _ = fail("d", tag: 4, at: 7, .environment)
        XCTAssertFalse(m.quarantined, "one in a row")
        _ = fail("e", tag: 5, at: 9, .gpuError)
        XCTAssertTrue(m.quarantined, "two in a row")
        let heartbeat = writes(m.tick(now: at(30)).actions).first { $0.kind == .heartbeat }
        XCTAssertEqual(heartbeat?.quarantined, true)
        XCTAssertEqual(m.receive(incoming(9, "f"), now: at(31)), [.settle(deliveryTag: 9, requeue: true)], "takes no job")
        XCTAssertEqual(m.probed(healthy: false), [])
        let back = m.probed(healthy: true)
        XCTAssertFalse(m.quarantined)
        XCTAssertTrue(back.contains(.consume(true)))
        XCTAssertTrue(back.contains(.metric(.quarantined(false))))
    }

    // Found by an adversarial review of the quarantine (helper), each failing before its fix:

    /// One dead GPU on a two-slot worker: its slot fails every job while the other slot's
    /// completions, before, reset the one count of the worker, so it was never quarantined.
    func testADeadSlotIsQuarantinedThoughTheOtherSlotCompletes() {
        var m = machine(slots: 2) {
            $0.worker.quarantineAfter = 3
            $0.jobs.machineFaultRetries = 0
        }
        _ = ready(&m)
        var runs: [String: (number: UInt64, slot: Int)] = [:]
        var tag: UInt64 = 0
        func start(_ id: String, at seconds: Double) {
            tag += 1
            let received = m.receive(incoming(tag, id), now: at(seconds))
            let started = starts(echo(&m, received, at: seconds))
            guard let first = started.first else { return XCTFail("\(id) did not start: \(received)") }
            runs[id] = (first.run, first.slot)
        }
        func end(_ id: String, at seconds: Double, _ reason: JobReason?) {
            var event = JobEvent(id: id, task: "t2v-A14B", event: reason == nil ? .completed : .failed, worker: "w1")
            event.reason = reason
            _ = echo(&m, m.runFinished(runs[id]!.number, event: event, now: at(seconds)), at: seconds)
        }
        start("long", at: 1)  // the healthy slot's first job
        var time = 2.0
        for round in 1...3 {
            start("bad-\(round)", at: time)
            XCTAssertNotEqual(runs["bad-\(round)"]!.slot, runs["long"]!.slot)
            end("bad-\(round)", at: time + 1, .gpuError)
            // The healthy slot completes a job between the dead slot's failures.
            end(round == 1 ? "long" : "good-\(round - 1)", at: time + 1.5, nil)
            if round < 3 { start("good-\(round)", at: time + 1.6) }
            time += 3
        }
        XCTAssertTrue(m.quarantined, "three gpu_errors in a row on one slot")
    }

    /// A job failed for its machine's sake goes back (a release naming the reason, then its
    /// requeue) instead of ending, as often as `jobs.machine_fault_retries` allows the fleet;
    /// past that, the next machine's fault ends it failed. A job's own failure ends at once.
    func testAMachinesFaultGivesTheJobBackOnceThenEndsIt() {
        var m = machine { $0.jobs.machineFaultRetries = 1 }
        _ = ready(&m)
        func failed(_ reason: JobReason) -> JobEvent {
            var event = JobEvent(id: "a", task: "t2v-A14B", event: .failed, worker: "w1")
            event.reason = reason
            return event
        }
        let first = run(&m, "a", tag: 1, at: 1)!
        let back = m.runFinished(first, event: failed(.gpuError), now: at(2))
        XCTAssertEqual(writes(back).map(\.kind), [.release])
        XCTAssertEqual(writes(back).first?.reason, "gpu_error")
        XCTAssertTrue(published(back).isEmpty, "no result")
        let decided = echo(&m, back, at: 2)
        XCTAssertEqual(requeues(decided).map(\.id), ["a"], "back in the queue for another worker")
        XCTAssertEqual(m.ledger.jobs["a"]?.machineFaults, 1)
        XCTAssertEqual(m.requeued("a", accepted: true, now: at(2)), [])
        // The job is for another worker: this one, whose slot just freed up, would be first in
        // line for it. It takes nothing for worker.probe_every_s (60 s here).
        XCTAssertFalse(back.contains(.consume(true)), "its free slot does not consume")
        XCTAssertEqual(m.receive(incoming(2, "a"), now: at(3)), [.settle(deliveryTag: 2, requeue: true)])
        XCTAssertFalse(m.tick(now: at(61)).actions.contains(.consume(true)))
        XCTAssertTrue(m.tick(now: at(63)).actions.contains(.consume(true)))
        // No other worker took it meanwhile: this one may, and a second fault ends it.
        let second = run(&m, "a", tag: 3, at: 64)!
        let end = m.runFinished(second, event: failed(.environment), now: at(65))
        XCTAssertEqual(writes(end).map(\.kind), [.end], "the fleet gave it its one retry: it ends")
        XCTAssertEqual(writes(end).first?.result?.reason, .environment)
        // The job's own failure (out of memory: its size) is never given back.
        let other = run(&m, "b", tag: 4, at: 66)!
        var oom = JobEvent(id: "b", task: "t2v-A14B", event: .failed, worker: "w1")
        oom.reason = .gpuOutOfMemory
        XCTAssertEqual(writes(m.runFinished(other, event: oom, now: at(67))).map(\.kind), [.end])
    }

    /// The give-back's requeue went out late (the connection lost, reconnected past a hold-off
    /// counted from the failure): before, the worker consumed again before its own job was
    /// back in the queue and was first in line for it (adversarial review). The hold-off now
    /// runs from the requeue's confirm.
    func testTheHoldOffRunsFromTheRequeuesConfirmNotFromTheFailure() {
        var m = machine { $0.jobs.machineFaultRetries = 1 }
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        _ = m.connectionLost()
        var event = JobEvent(id: "a", task: "t2v-A14B", event: .failed, worker: "w1")
        event.reason = .gpuError
        _ = m.runFinished(number, event: event, now: at(2))
        _ = m.tick(now: at(70))
        let reconnect = m.connected(node: "n1", now: at(71))
        var caught = reconnect + echo(&m, reconnect, at: 71)
        caught += echo(&m, caught, at: 71)
        XCTAssertEqual(requeues(caught).map(\.id), ["a"])
        XCTAssertFalse(caught.contains(.consume(true)), "consuming before its own job is back in the queue")
        XCTAssertFalse(m.tick(now: at(72)).actions.contains(.consume(true)))
        _ = m.requeued("a", accepted: true, now: at(72))
        XCTAssertFalse(m.tick(now: at(131)).actions.contains(.consume(true)))
        XCTAssertTrue(m.tick(now: at(133)).actions.contains(.consume(true)))
    }

    /// A claim written before the quarantine began and decided after it: before, the job ran
    /// on the machine that had just been fenced off.
    func testAClaimDecidedAfterTheQuarantineBeganIsGivenBackUnstarted() {
        var m = machine(slots: 2) {
            $0.worker.quarantineAfter = 1
            $0.jobs.machineFaultRetries = 0
        }
        _ = ready(&m)
        let first = run(&m, "a", tag: 1, at: 1)!
        let pending = m.receive(incoming(2, "b"), now: at(2))  // claimed, not yet back from the ledger
        var event = JobEvent(id: "a", task: "t2v-A14B", event: .failed, worker: "w1")
        event.reason = .gpuError
        _ = echo(&m, m.runFinished(first, event: event, now: at(3)), at: 3)
        XCTAssertTrue(m.quarantined)
        let decided = echo(&m, pending, at: 4)
        XCTAssertTrue(starts(decided).isEmpty, "ran on a quarantined machine")
        XCTAssertEqual(writes(decided).map(\.kind), [.release])
        XCTAssertTrue(decided.contains(.ack(deliveryTag: 2)), "the ledger holds the job now: the delivery is acked")
    }

    // Found by an adversarial review of the repair above (helper), each failing before its fix:

    func requeues(_ actions: [WorkerStateMachine.Action]) -> [Requeue] { actions.compactMap { if case .requeue(let r) = $0 { r } else { nil } } }

    /// `id` claimed by w2 at 1 s, then given back by w1's valid expiry at `seconds` (w1, not
    /// this worker, owes the requeue).
    func givenBack(_ m: inout WorkerStateMachine, _ id: String, at seconds: Double) {
        var claim = LedgerRecord(kind: .claim, worker: "w2", at: t0, ref: "c-\(id)", id: id)
        claim.job = #"{"id":"\#(id)","task":"t2v-A14B"}"#
        claim.task = "t2v-A14B"
        _ = m.fold(.record(claim), now: at(1))
        var expiry = LedgerRecord(kind: .expire, worker: "w1", at: t0, ref: "x-\(id)", id: id, attempt: 1)
        expiry.counter = -1
        XCTAssertFalse(m.fold(.record(expiry), now: at(seconds)).contains { if case .requeue = $0 { true } else { false } })
    }

    /// A job given back (w1's valid expiry), w1's requeue reached the exchange, and this worker
    /// cannot validate the copy (its inputs are not on this machine): dead-lettered, its
    /// attempt-0 end does not count. The queue may hold no message of the job: it is requeued
    /// a lease later (another worker may validate it), not left queued in the ledger alone.
    func testARequeuedCopyThisWorkerRejectsIsRequeuedAgainALeaseLater() {
        var m = machine(name: "w3")
        _ = ready(&m)
        givenBack(&m, "a", at: 42)
        _ = m.fold(.submitted(id: "a", task: "t2v-A14B", submitter: "w1", at: nil), now: at(43))
        var copy = incoming(7, "a")
        copy.requeue = .init(after: 1, expiries: 1)
        copy.validation = .failure(JobRejection(id: "a", task: "t2v-A14B", message: "params.image: does not exist: /in/x.png"))
        let decided = echo(&m, m.receive(copy, now: at(44)), at: 44)
        XCTAssertTrue(decided.contains(.settle(deliveryTag: 7, requeue: false)), "dead-lettered here")
        XCTAssertTrue(published(decided).isEmpty, "a requeued copy answers nobody")
        XCTAssertEqual(requeues((45...80).flatMap { m.tick(now: at(Double($0))).actions }), [], "not within the lease")
        XCTAssertEqual(requeues((81...200).flatMap { m.tick(now: at(Double($0))).actions }).map(\.id), ["a"])
    }

    /// The writer of the valid expiry is gone, then a client's broken duplicate of the id
    /// reaches the exchange (its submission in the ledger) and is rejected: the repair still comes.
    func testAnInvalidDuplicateDoesNotDisarmTheRepair() {
        var m = machine(name: "w3")
        _ = ready(&m)
        givenBack(&m, "a", at: 42)
        _ = m.fold(.submitted(id: "a", task: "t2v-A14B", submitter: "client", at: nil), now: at(50))
        var duplicate = incoming(8, "a")
        duplicate.validation = .failure(JobRejection(id: "a", task: "t2v-A14B", message: "params.prompt is required"))
        _ = echo(&m, m.receive(duplicate, now: at(50)), at: 50)
        XCTAssertEqual(requeues((51...300).flatMap { m.tick(now: at(Double($0))).actions }).map(\.id), ["a"])
    }

    /// A first, broken copy named another task; the valid copy's claim won. The requeue goes
    /// where the claim's task routes it, not to the alternate exchange.
    func testARequeueRoutesByTheTaskTheClaimRan() {
        var m = machine(name: "w3")
        _ = ready(&m)
        _ = m.fold(.submitted(id: "a", task: "bogus", submitter: "c", at: nil), now: at(1))
        _ = m.fold(.submitted(id: "a", task: "t2v-A14B", submitter: "c", at: nil), now: at(1))
        givenBack(&m, "a", at: 50)
        XCTAssertEqual(requeues((50...200).flatMap { m.tick(now: at(Double($0))).actions }).first?.task, "t2v-A14B")
    }

    // Found by an adversarial review (helper), each failing before its fix:

    func testAClaimDecidedAfterARequeueShutdownStartsNothingAndIsGivenBack() {
        var m = machine()
        _ = ready(&m)
        let claim = m.receive(incoming(1, "a"), now: at(1))
        m.requestShutdown(.requeue)
        XCTAssertFalse(m.tick(now: at(1.05)).done)
        let decided = echo(&m, claim, at: 1.1)
        XCTAssertTrue(starts(decided).isEmpty, "no run starts after a requeue shutdown")
        let release = writes(decided).first { $0.kind == .release }
        XCTAssertEqual(release?.attempt, 1, "the won attempt is given back at once")
        let back = m.fold(.record(release!), now: at(1.2))
        XCTAssertTrue(back.contains { if case .requeue(let r) = $0 { r.id == "a" } else { false } })
        _ = m.requeued("a", accepted: true, now: at(1.3))
        XCTAssertTrue(m.tick(now: at(1.4)).done)
    }

    func testAnAnsweredDuplicateIsAckedOnlyOnceItsAnswerIsConfirmed() {
        var m = machine()
        _ = ready(&m)
        completed(&m, "a", tag: 1, at: 1)
        let again = echo(&m, m.receive(incoming(2, "a", replyTo: "late", correlationID: "x"), now: at(3)), at: 3)
        XCTAssertFalse(again.contains(.ack(deliveryTag: 2)), "the delivery holds the answer until the broker has it")
        XCTAssertEqual(m.resultsPublished(published(again), accepted: [true], now: at(3.1)), [.ack(deliveryTag: 2)])
        // A second duplicate whose answer is lost with the connection: never acked, dropped
        // from the outbox (the broker redelivers the submission, and that copy is answered).
        let third = echo(&m, m.receive(incoming(3, "a", replyTo: "late", correlationID: "y"), now: at(4)), at: 4)
        XCTAssertEqual(published(third).count, 1)
        XCTAssertFalse(third.contains(.ack(deliveryTag: 3)))
        _ = m.connectionLost()
        XCTAssertTrue(m.outbox.isEmpty)
        XCTAssertTrue(m.resultsPublished(published(third), accepted: [true], now: at(4.1)).isEmpty, "a late confirm settles nothing")
        // Without a reply_to there is nothing to answer: acked at once.
        let connect = m.connected(node: "n1", now: at(5))
        _ = echo(&m, connect, at: 5)
        XCTAssertTrue(echo(&m, m.receive(incoming(4, "a"), now: at(6)), at: 6).contains(.ack(deliveryTag: 4)))
    }

    func testASecondCopyOfARequeueAnswersNobody() {
        var m = machine()
        _ = ready(&m)
        let first = m.receive(incoming(1, "a", replyTo: "first", correlationID: "c"), now: at(1))
        let number = starts(echo(&m, first, at: 1))[0].run
        let counted = echo(&m, m.runFinished(number, event: JobEvent(id: "a", task: "t2v-A14B", event: .completed, worker: "w1"), now: at(2)), at: 2)
        XCTAssertEqual(published(counted).map(\.destination), [.results, .reply(.init(replyTo: "first", correlationID: "c"))])
        // A requeue sent twice (its confirm lost with a connection) carries the job's own reply_to.
        var copy = incoming(2, "a", replyTo: "first", correlationID: "c")
        copy.requeue = .init(after: 1, expiries: 0)
        let again = echo(&m, m.receive(copy, now: at(3)), at: 3)
        XCTAssertTrue(published(again).isEmpty, "the first reply_to heard the result once already")
        XCTAssertTrue(again.contains(.ack(deliveryTag: 2)))
    }

    func testARequeuedCopyThatFailsValidationHereAnswersNobody() {
        var m = machine()
        _ = ready(&m)
        // Its input is gone on this host, say: the copy is invalid here, its reply_to is the job's.
        let copy = WorkerStateMachine.Incoming(
            tag: 5, validation: .failure(JobRejection(id: "a", task: "t2v-A14B", message: "inputs.image: no such file")),
            body: "{}", submitter: nil, redelivered: false, replyTo: "first", correlationID: "c", sentAt: nil,
            requeue: .init(after: 1, expiries: 1))
        let out = echo(&m, m.receive(copy, now: at(1)), at: 1)
        XCTAssertFalse(published(out).contains { $0.destination == .reply(.init(replyTo: "first", correlationID: "c")) })
    }

    func testAClaimOfARequeueCarriesTheAttemptItFollows() {
        var m = machine()
        _ = ready(&m)
        var copy = incoming(3, "a", replyTo: "first")
        copy.requeue = .init(after: 2, expiries: 1)
        let claim = writes(m.receive(copy, now: at(1)))
        XCTAssertEqual(claim.first?.requeuedAfter, 2)
        XCTAssertEqual(claim.first?.expiries, 1)
    }

    func testAnInvalidJobsDeliveryIsDeadLetteredOnlyOnceItsReplyIsConfirmed() {
        var m = machine()
        _ = ready(&m)
        var bad = WorkerStateMachine.Incoming(
            tag: 1, validation: .failure(JobRejection(id: "x", task: "t2v-A14B", message: "params.size is wrong")),
            body: "{}", submitter: nil, redelivered: false, replyTo: "r", correlationID: "c", sentAt: nil)
        let counted = echo(&m, m.receive(bad, now: at(1)), at: 1)
        XCTAssertFalse(counted.contains(.settle(deliveryTag: 1, requeue: false)))
        let items = published(counted)
        XCTAssertEqual(items.map(\.destination), [.results, .reply(.init(replyTo: "r", correlationID: "c"))])
        XCTAssertEqual(
            m.resultsPublished(items, accepted: [true, false], now: at(1.1)).filter { if case .settle = $0 { true } else { false } },
            [
                .settle(deliveryTag: 1, requeue: false)
            ], "settled once the reply_to answered, even with a refusal")
        bad.tag = 2
        bad.replyTo = nil
        bad.validation = .failure(JobRejection(id: "y", task: "t2v-A14B", message: "params.size is wrong"))
        XCTAssertTrue(echo(&m, m.receive(bad, now: at(2)), at: 2).contains(.settle(deliveryTag: 2, requeue: false)), "no reply_to: settled at once")
    }

    func testARejectionInTheLedgerBeforeALossStillReachesTheResultsQueueOnce() {
        var m = machine()
        _ = ready(&m)
        let bad = WorkerStateMachine.Incoming(
            tag: 1, validation: .failure(JobRejection(id: "x", task: "t2v-A14B", message: "params.size is wrong")),
            body: "{}", submitter: nil, redelivered: false, replyTo: "r", correlationID: "c", sentAt: nil)
        let end = writes(m.receive(bad, now: at(1)))
        XCTAssertEqual(end.map(\.kind), [.end])
        _ = m.connectionLost()  // the end is already in the stream
        let connect = m.connected(node: "n2", now: at(2))
        // The broker confirms every publish.
        func confirmed(_ actions: [WorkerStateMachine.Action], at second: Double) -> [WorkerStateMachine.Action] {
            let items = published(actions)
            return items.isEmpty
                ? actions : actions + confirmed(m.resultsPublished(items, accepted: items.map { _ in true }, now: at(second)), at: second)
        }
        var out = confirmed(m.fold(.record(end[0]), now: at(2.1)), at: 2.1)  // the catch-up reads it
        out += confirmed(echo(&m, connect, at: 2.2), at: 2.2)
        var again = bad
        again.redelivered = true
        again.tag = 9
        out += confirmed(echo(&m, m.receive(again, now: at(3)), at: 3.1), at: 3.1)
        for s in stride(from: 4.0, through: 30, by: 1) { out += confirmed(m.tick(now: at(s)).actions, at: s) }
        XCTAssertEqual(m.ledger.jobs["x"]?.result?.reason, .invalidJob)
        XCTAssertEqual(published(out).filter { $0.destination == .results }.map(\.event.id), ["x"], "once on the results queue")
        XCTAssertEqual(published(out).filter { $0.destination != .results }.count, 1, "once on its reply_to")
        XCTAssertTrue(out.contains(.settle(deliveryTag: 9, requeue: false)), "the redelivered copy is dead-lettered")
    }

    func testARunAbandonedDuringADrainIsReleasedNotLeftToExpire() {
        var m = machine()
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        m.requestShutdown(.drain)
        XCTAssertTrue(stops(m.tick(now: at(2)).actions).isEmpty)
        // systemd's stop also SIGTERMs the generator: the run ends without a result.
        let finished = m.runFinished(number, event: nil, now: at(3))
        XCTAssertEqual(writes(finished).map(\.kind), [.release], "given back, not counted as a failed attempt")
    }

    // Found by the fault-injection harness (docs/reliability.md, finding 3):

    func testARunThatEndsPastTheFenceIsNeverPublishedWhateverItSays() {
        // The owner loop stalled (a blocking call during a partition): the watchdog killed the
        // run, and its exit reaches the machine before any tick ran the fence.
        var m = machine()
        _ = ready(&m)
        let number = run(&m, "a", tag: 1, at: 1)!
        var killed = JobEvent(id: "a", task: "t2v-A14B", event: .failed, worker: "w1")
        killed.reason = .signal
        killed.signal = 9
        let finished = m.runFinished(number, event: killed, now: at(39))
        XCTAssertFalse(writes(finished).contains { $0.kind == .end }, "no end for a run past its fence")
        XCTAssertTrue(finished.contains(.discardRun(id: "a", attempt: 1)))
    }
}
