import XCTest

@testable import GenWorker

/// Every transition of the intake's decisions, without a broker.
final class JobIntakeTests: XCTestCase {
    let now = ContinuousClock.now

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

    func delivery(_ tag: UInt64, _ id: String, count: Int? = nil, submitter: String? = nil, redelivered: Bool = false) -> JobIntake.Delivery {
        JobIntake.Delivery(tag: tag, validation: .success(job(id)), deliveryCount: count, submitter: submitter, redelivered: redelivered)
    }

    func testAValidJobRunsOnAFreeSlot() {
        var intake = intake(slots: 2)
        XCTAssertEqual(intake.receive(delivery(1, "a"), at: now), .run(job("a"), slot: 0))
        XCTAssertEqual(intake.receive(delivery(2, "b"), at: now), .run(job("b"), slot: 1))
        XCTAssertEqual(intake.busySlots, 2)
        XCTAssertEqual(intake.running[2], .init(id: "b", task: .t2vA14B, submitter: nil, slot: 1))
    }

    func testMoreDeliveriesThanSlotsAreGivenBack() {
        var intake = intake(slots: 1)
        _ = intake.receive(delivery(1, "a"), at: now)
        XCTAssertEqual(intake.receive(delivery(2, "b"), at: now), .settle(nil, .requeue))
        XCTAssertEqual(intake.finished(1)?.id, "a")
        XCTAssertEqual(intake.receive(delivery(3, "b"), at: now), .run(job("b"), slot: 0))
    }

    func testASlotFreedIsReusedLowestFirst() {
        var intake = intake(slots: 3)
        for tag in UInt64(1)...3 { _ = intake.receive(delivery(tag, "j\(tag)"), at: now) }
        _ = intake.finished(3)
        _ = intake.finished(1)
        XCTAssertEqual(intake.freeSlots, [0, 2])
        XCTAssertEqual(intake.receive(delivery(4, "d"), at: now), .run(job("d"), slot: 0))
        XCTAssertNil(intake.finished(99), "an unknown tag frees nothing")
    }

    func testAnInvalidJobWithAnIDFailsAndIsDeadLettered() {
        var intake = intake()
        let rejection = JobRejection(id: "bad", task: "t2v-A14B", message: "params.size is wrong")
        let decision = intake.receive(.init(tag: 1, validation: .failure(rejection), deliveryCount: nil, submitter: nil, redelivered: true), at: now)
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
            intake.receive(.init(tag: 1, validation: .failure(rejection), deliveryCount: nil, submitter: nil, redelivered: false), at: now),
            .settle(nil, .deadLetter))
    }

    func testAtTheDeliveryLimitTheJobFails() {
        var intake = intake()
        XCTAssertEqual(intake.receive(delivery(1, "a", count: 2), at: now), .run(job("a"), slot: 0), "below the limit it runs")
        _ = intake.finished(1)
        guard case .settle(let event?, .deadLetter) = intake.receive(delivery(2, "a", count: 3), at: now) else {
            return XCTFail("at the limit the job must fail and be dead-lettered")
        }
        XCTAssertEqual(event.reason, .deliveryLimit)
        XCTAssertEqual(event.status, .failed)
        XCTAssertTrue(event.message?.contains("delivered 4 times") ?? false, event.message ?? "")
    }

    func testTheDeliveryLimitComesBeforeAQueuedCancel() {
        var intake = intake()
        _ = intake.cancel("a", by: nil, at: now)
        guard case .settle(let event?, .deadLetter) = intake.receive(delivery(1, "a", count: 5), at: now) else { return XCTFail() }
        XCTAssertEqual(event.reason, .deliveryLimit)
    }

    func testACancelHeardBeforeTheJobCancelsItBeforeStart() {
        var intake = intake()
        XCTAssertEqual(intake.cancel("a", by: nil, at: now), .init(), "nothing runs yet")
        guard case .settle(let event?, .ack) = intake.receive(delivery(1, "a", redelivered: true), at: now) else { return XCTFail() }
        XCTAssertEqual(event.event, .cancelled)
        XCTAssertEqual(event.reason, .cancelledBeforeStart)
        XCTAssertEqual(event.redelivered, true)
        XCTAssertEqual(intake.receive(delivery(2, "b"), at: now), .run(job("b"), slot: 0), "other ids still run")
    }

    func testACancelExpiresAfterTheRetention() {
        var intake = intake()
        _ = intake.cancel("a", by: nil, at: now)
        XCTAssertEqual(intake.receive(delivery(1, "a"), at: now + .seconds(24 * 3600 + 1)), .run(job("a"), slot: 0))
    }

    func testACancelStopsTheRunningJobOfThatIDOnly() {
        var intake = intake(slots: 2)
        _ = intake.receive(delivery(7, "a"), at: now)
        _ = intake.receive(delivery(8, "b"), at: now)
        XCTAssertEqual(intake.cancel("b", by: nil, at: now), .init(stop: [8], refused: []))
        XCTAssertEqual(intake.cancel("zzz", by: nil, at: now), .init())
    }

    func testWithAuthorizeOnlyTheSubmitterOrAnAdminCancels() {
        var intake = intake(authorize: true, admins: ["ops"])
        _ = intake.receive(delivery(1, "a", submitter: "alice"), at: now)
        XCTAssertEqual(intake.cancel("a", by: "mallory", at: now), .init(stop: [], refused: [1]))
        XCTAssertEqual(intake.cancel("a", by: nil, at: now), .init(stop: [], refused: [1]))
        XCTAssertEqual(intake.cancel("a", by: "alice", at: now), .init(stop: [1], refused: []))
        XCTAssertEqual(intake.cancel("a", by: "ops", at: now), .init(stop: [1], refused: []))
        // Queued: mallory's cancel does not count, the admin's does.
        var queued = self.intake(authorize: true, admins: ["ops"])
        _ = queued.cancel("q", by: "mallory", at: now)
        XCTAssertEqual(queued.receive(delivery(1, "q", submitter: "alice"), at: now), .run(job("q"), slot: 0))
        _ = queued.finished(1)
        _ = queued.cancel("q", by: "ops", at: now)
        guard case .settle(let event?, .ack) = queued.receive(delivery(2, "q", submitter: "alice"), at: now) else { return XCTFail() }
        XCTAssertEqual(event.reason, .cancelledBeforeStart)
    }

    func testDrainStopsNothingAndRefusesNewJobs() {
        var intake = intake(slots: 2)
        _ = intake.receive(delivery(1, "a"), at: now)
        XCTAssertEqual(intake.beginShutdown(.drain), [])
        XCTAssertEqual(intake.receive(delivery(2, "b"), at: now), .settle(nil, .requeue), "a delivery in flight goes back")
        XCTAssertEqual(intake.beginShutdown(.requeue), [1], "a drain can become a requeue")
        XCTAssertEqual(intake.beginShutdown(.requeue), [], "asked once")
        XCTAssertEqual(intake.beginShutdown(.drain), [], "not back to drain")
        XCTAssertEqual(intake.shutdown, .requeue)
    }

    func testRequeueStopsEveryRunningJob() {
        var intake = intake(slots: 3)
        for tag in UInt64(1)...3 { _ = intake.receive(delivery(tag, "j\(tag)"), at: now) }
        XCTAssertEqual(intake.beginShutdown(.requeue), [1, 2, 3])
    }

    func testAConnectionLossStopsEveryRun() {
        var intake = intake(slots: 2)
        _ = intake.receive(delivery(4, "a"), at: now)
        _ = intake.receive(delivery(5, "b"), at: now)
        XCTAssertEqual(intake.connectionLost(), [4, 5])
        _ = intake.finished(4)
        _ = intake.finished(5)
        XCTAssertEqual(intake.busySlots, 0)
        XCTAssertEqual(intake.freeSlots, [0, 1])
    }

    func testCancelLogPrunesOldEntries() {
        var log = CancelLog(retention: .seconds(10))
        log.insert("old", user: nil, at: now)
        log.insert("new", user: "u", at: now + .seconds(61))
        XCTAssertEqual(log.count, 1, "pruned on the insert a minute later")
        XCTAssertFalse(log.contains("old", at: now + .seconds(61)) { _ in true })
        XCTAssertTrue(log.contains("new", at: now + .seconds(62)) { $0 == "u" })
        XCTAssertFalse(log.contains("new", at: now + .seconds(62)) { $0 == "v" })
    }
}
