import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// Every transition of the intake's decisions, without a broker.
final class JobIntakeTests: XCTestCase {
    func intake(slots: Int = 1, authorize: Bool = false, admins: [String] = []) -> JobIntake {
        var c = WorkerConfiguration()
        c.worker.name = "w1"
        c.worker.slots = slots
        c.topology.deliveryLimit = 3
        c.cancel.authorize = authorize
        c.cancel.admins = admins
        return JobIntake(configuration: c)
    }

    func job(_ id: String) -> JobRequest {
        JobRequest(id: id, task: .t2vA14B, parameters: [JobParameter("prompt", .text("p"))], timeout: .seconds(60))
    }

    func delivery(_ id: String, submitter: String? = nil, redelivered: Bool = false) -> JobIntake.Delivery {
        JobIntake.Delivery(validation: .success(job(id)), submitter: submitter, redelivered: redelivered)
    }

    /// The ledger's view of a job that was cancelled by `users` and expired `expiries` times.
    func ledgerJob(_ id: String, cancelledBy users: [String?] = [], expiries: Int = 0) -> LedgerState.Job {
        var state = LedgerState(retention: 3600)
        let now = Date()
        _ = state.apply(.submitted(id: id, task: "t2v-A14B", submitter: nil, at: now), at: now)
        for user in users { _ = state.apply(.cancelled(id: id, user: user), at: now) }
        var job = state.jobs[id]!
        job.expiries = expiries
        return job
    }

    func testAValidJobIsClaimedOnAFreeSlot() {
        var intake = intake(slots: 2)
        XCTAssertEqual(intake.receive(delivery("a")), .claim(run: 1, job("a"), slot: 0))
        XCTAssertEqual(intake.receive(delivery("b")), .claim(run: 2, job("b"), slot: 1))
        XCTAssertEqual(intake.busySlots, 2, "a claim holds its slot")
        XCTAssertEqual(intake.running[2], .init(id: "b", task: .t2vA14B, submitter: nil, slot: 1, started: false))
        XCTAssertEqual(intake.claimDecided(2, outcome: .won(attempt: 1), job: ledgerJob("b")), .run(attempt: 1))
        XCTAssertEqual(intake.running[2]?.started, true)
    }

    func testMoreDeliveriesThanSlotsAreGivenBack() {
        var intake = intake(slots: 1)
        _ = intake.receive(delivery("a"))
        XCTAssertEqual(intake.receive(delivery("b")), .settle(nil, .requeue))
        XCTAssertEqual(intake.finished(1)?.id, "a")
        XCTAssertEqual(intake.receive(delivery("b")), .claim(run: 2, job("b"), slot: 0))
    }

    func testASlotFreedIsReusedLowestFirst() {
        var intake = intake(slots: 3)
        for n in 1...3 { _ = intake.receive(delivery("j\(n)")) }
        _ = intake.finished(3)
        _ = intake.finished(1)
        XCTAssertEqual(intake.freeSlots, [0, 2])
        XCTAssertEqual(intake.receive(delivery("d")), .claim(run: 4, job("d"), slot: 0))
        XCTAssertNil(intake.finished(99), "an unknown run frees nothing")
    }

    func testALostOrAnsweredClaimFreesItsSlot() {
        var intake = intake(slots: 2)
        _ = intake.receive(delivery("a"))
        _ = intake.receive(delivery("b"))
        XCTAssertEqual(intake.claimDecided(1, outcome: .attached, job: ledgerJob("a")), .attached)
        var recorded = JobEvent(id: "b", task: "t2v-A14B", event: .completed, worker: "w9")
        recorded.output = "/out/b.mp4"
        XCTAssertEqual(intake.claimDecided(2, outcome: .ended(recorded), job: ledgerJob("b")), .answer(recorded))
        XCTAssertEqual(intake.busySlots, 0)
        XCTAssertEqual(intake.freeSlots, [0, 1])
    }

    func testAnInvalidJobWithAnIDFailsAndIsDeadLettered() {
        var intake = intake()
        let rejection = JobRejection(id: "bad", task: "t2v-A14B", message: "params.size is wrong")
        let decision = intake.receive(.init(validation: .failure(rejection), submitter: nil, redelivered: true))
        var expected = JobEvent(id: "bad", task: "t2v-A14B", event: .failed, worker: "w1")
        expected.reason = .invalidJob
        expected.message = "params.size is wrong"
        expected.redelivered = true
        XCTAssertEqual(decision, .settle(expected, .deadLetter))
        XCTAssertEqual(intake.busySlots, 0)
    }

    func testAnInvalidJobWithoutAnIDIsOnlyDeadLettered() {
        var intake = intake()
        let rejection = JobRejection(id: nil, task: nil, message: "not JSON")
        XCTAssertEqual(
            intake.receive(.init(validation: .failure(rejection), submitter: nil, redelivered: false)),
            .settle(nil, .deadLetter))
    }

    func testABouncedDeliveryIsNoAttempt() {
        // A job bounced back to the queue many times (full slots, dropped connections) and
        // redelivered: the broker's count is not read; the ledger has no expiry, so it runs.
        var intake = intake()
        XCTAssertEqual(intake.receive(delivery("a", redelivered: true)), .claim(run: 1, job("a"), slot: 0))
        XCTAssertEqual(intake.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("a")), .run(attempt: 1))
    }

    func testARequeuedJobKeepsItsSubmittersCancelAuthority() {
        // A requeued message carries the worker's user, not alice's: the ledger's submitter counts.
        var intake = intake(authorize: true)
        _ = intake.receive(delivery("a", submitter: "worker-account", redelivered: true))
        var job = ledgerJob("a")
        job.submitter = "alice"
        XCTAssertEqual(intake.claimDecided(1, outcome: .won(attempt: 2), job: job), .run(attempt: 2))
        XCTAssertEqual(intake.cancel("a", by: "alice"), .init(stop: [1], refused: []))
        XCTAssertEqual(intake.cancel("a", by: "worker-account"), .init(stop: [], refused: [1]))
    }

    func testAfterDeliveryLimitExpiriesTheWonAttemptEndsFailed() {
        var intake = intake()
        _ = intake.receive(delivery("a"))
        guard case .end(let event, attempt: 4) = intake.claimDecided(1, outcome: .won(attempt: 4), job: ledgerJob("a", expiries: 3)) else {
            return XCTFail("three attempts died with their workers: the fourth claim must end the job")
        }
        XCTAssertEqual(event.reason, .deliveryLimit)
        XCTAssertEqual(intake.busySlots, 0)
        _ = intake.receive(delivery("b"))
        XCTAssertEqual(intake.claimDecided(2, outcome: .won(attempt: 3), job: ledgerJob("b", expiries: 2)), .run(attempt: 3))
    }

    func testACancelInTheLedgerCancelsAWonClaimBeforeStart() {
        var intake = intake()
        _ = intake.receive(delivery("a", redelivered: true))
        guard case .end(let event, attempt: 1) = intake.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("a", cancelledBy: [nil])) else {
            return XCTFail()
        }
        XCTAssertEqual(event.event, .cancelled)
        XCTAssertEqual(event.reason, .cancelledBeforeStart)
        _ = intake.receive(delivery("b"))
        XCTAssertEqual(intake.claimDecided(2, outcome: .won(attempt: 1), job: ledgerJob("b")), .run(attempt: 1), "other ids still run")
    }

    func testACancelStopsTheRunningJobOfThatIDOnly() {
        var intake = intake(slots: 3)
        _ = intake.receive(delivery("a"))
        _ = intake.receive(delivery("b"))
        _ = intake.receive(delivery("b"))
        _ = intake.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("a"))
        _ = intake.claimDecided(2, outcome: .won(attempt: 1), job: ledgerJob("b"))
        XCTAssertEqual(intake.cancel("b", by: nil), .init(stop: [2], refused: []), "a claim not yet decided is not a run")
        XCTAssertEqual(intake.cancel("zzz", by: nil), .init())
    }

    func testWithAuthorizeOnlyTheSubmitterOrAnAdminCancels() {
        var intake = intake(authorize: true, admins: ["ops"])
        _ = intake.receive(delivery("a", submitter: "alice"))
        _ = intake.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("a"))
        XCTAssertEqual(intake.cancel("a", by: "mallory"), .init(stop: [], refused: [1]))
        XCTAssertEqual(intake.cancel("a", by: nil), .init(stop: [], refused: [1]))
        XCTAssertEqual(intake.cancel("a", by: "alice"), .init(stop: [1], refused: []))
        XCTAssertEqual(intake.cancel("a", by: "ops"), .init(stop: [1], refused: []))
        // Queued: mallory's cancel does not count, the admin's does.
        var queued = self.intake(authorize: true, admins: ["ops"])
        _ = queued.receive(delivery("q", submitter: "alice"))
        XCTAssertEqual(queued.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("q", cancelledBy: ["mallory"])), .run(attempt: 1))
        _ = queued.finished(1)
        _ = queued.receive(delivery("q", submitter: "alice"))
        guard case .end(let event, _) = queued.claimDecided(2, outcome: .won(attempt: 2), job: ledgerJob("q", cancelledBy: ["mallory", "ops"]))
        else { return XCTFail() }
        XCTAssertEqual(event.reason, .cancelledBeforeStart)
    }

    func testDrainStopsNothingAndRefusesNewJobs() {
        var intake = intake(slots: 2)
        _ = intake.receive(delivery("a"))
        _ = intake.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("a"))
        XCTAssertEqual(intake.beginShutdown(.drain), [])
        XCTAssertEqual(intake.receive(delivery("b")), .settle(nil, .requeue), "a delivery in flight goes back")
        XCTAssertEqual(intake.beginShutdown(.requeue), [1], "a drain can become a requeue")
        XCTAssertEqual(intake.beginShutdown(.requeue), [], "asked once")
        XCTAssertEqual(intake.beginShutdown(.drain), [], "not back to drain")
        XCTAssertEqual(intake.shutdown, .requeue)
    }

    func testRequeueStopsEveryRunningJob() {
        var intake = intake(slots: 3)
        for tag in UInt64(1)...3 {
            _ = intake.receive(delivery("j\(tag)"))
            _ = intake.claimDecided(tag, outcome: .won(attempt: 1), job: ledgerJob("j\(tag)"))
        }
        XCTAssertEqual(intake.beginShutdown(.requeue), [1, 2, 3])
    }

    func testAConnectionLossDropsPendingClaimsAndKeepsRuns() {
        var intake = intake(slots: 2)
        _ = intake.receive(delivery("a"))
        _ = intake.receive(delivery("b"))
        _ = intake.claimDecided(1, outcome: .won(attempt: 1), job: ledgerJob("a"))
        XCTAssertEqual(intake.connectionLost(), [2], "the broker requeued b's delivery; a is the ledger's, and runs on")
        XCTAssertEqual(intake.busySlots, 1)
        XCTAssertEqual(intake.freeSlots, [1])
        XCTAssertEqual(intake.claimDecided(2, outcome: .won(attempt: 1), job: nil), .attached, "a dropped claim starts nothing")
    }

    func testExcusedExpiriesCountAgainPastTheLimit() {
        // delivery_limit 3 (see `intake`): up to 3 excused expiries are forgiven, the rest count.
        var job = LedgerState.Job(id: "flood", at: Date())
        job.excused = 5
        var a = intake()
        _ = a.receive(delivery("flood"))
        XCTAssertEqual(a.claimDecided(1, outcome: .won(attempt: 4), job: job), .run(attempt: 4), "two counted of 3")
        job.excused = 6
        var b = intake()
        _ = b.receive(delivery("flood"))
        guard case .end(let event, _) = b.claimDecided(1, outcome: .won(attempt: 5), job: job) else { return XCTFail() }
        XCTAssertEqual(event.reason, .deliveryLimit)
    }
}
