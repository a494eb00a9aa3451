import XCTest

@testable import GenWorkerCore

/// A job as the HTTP API shows it, from the ledger's fold: one state, the timeline, the submitter.
final class APIJobTests: XCTestCase {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func fold(_ entries: [LedgerEntry]) -> LedgerState {
        var ledger = LedgerState(retention: 3600)
        for (n, entry) in entries.enumerated() { _ = ledger.apply(entry, at: t0.addingTimeInterval(Double(n))) }
        return ledger
    }

    func claim(_ worker: String, requeueAfter: Int? = nil) -> LedgerEntry {
        var record = LedgerRecord(kind: .claim, worker: worker, at: t0, id: "a")
        record.job = #"{"id":"a","task":"t2v-A14B"}"#
        record.task = "t2v-A14B"
        record.requeuedAfter = requeueAfter
        return .record(record)
    }

    func testAJobThatExpiredOnceThenCompletedAfterACancelShowsEveryStepInOrder() throws {
        var expire = LedgerRecord(kind: .expire, worker: "w2", at: t0, id: "a", attempt: 1)
        expire.counter = -1
        var end = LedgerRecord(kind: .end, worker: "w2", at: t0, id: "a", attempt: 2)
        end.result = JobEvent(id: "a", task: "t2v-A14B", event: .completed, worker: "w2")
        let ledger = fold([
            .submitted(id: "a", task: "t2v-A14B", submitter: "api-account", at: t0), claim("w1"), .record(expire),
            .submitted(id: "a", task: "t2v-A14B", submitter: "api-account", at: t0), claim("w2", requeueAfter: 1),
            .cancelled(id: "a", user: "alice"), .record(end),
        ])
        let job = APIJob(try XCTUnwrap(ledger.jobs["a"]), progress: nil, requestedBy: "alice")
        XCTAssertEqual(job.state, "completed")
        XCTAssertTrue(job.isTerminal)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(job.worker, "w2")
        XCTAssertEqual(job.submitter, "alice", "the API's caller, not the broker account")
        XCTAssertTrue(job.cancelRequested)
        XCTAssertEqual(job.result?.event, .completed)
        XCTAssertEqual(job.timeline?.map(\.event), ["submitted", "claimed", "expired", "claimed", "cancel_requested", "ended"])
        XCTAssertEqual(job.timeline?.map(\.worker), [nil, "w1", "w1", "w2", nil, "w2"])
    }

    func testQueuedAndRunningJobsHaveNoResultAndListsLeaveTheTimelineOut() throws {
        var ledger = fold([.submitted(id: "a", task: "t2v-A14B", submitter: "svc", at: t0)])
        var job = APIJob(try XCTUnwrap(ledger.jobs["a"]), progress: nil, requestedBy: nil, timeline: false)
        XCTAssertEqual(job.state, "queued")
        XCTAssertEqual(job.submitter, "svc")
        XCTAssertNil(job.timeline)
        XCTAssertFalse(job.isTerminal)
        _ = ledger.apply(claim("w1"), at: t0.addingTimeInterval(5))
        var progress = JobEvent(id: "a", task: "t2v-A14B", event: .progress, worker: "w1")
        progress.progress = JobProgress(step: 3, total: 10, percent: 30)
        job = APIJob(try XCTUnwrap(ledger.jobs["a"]), progress: progress, requestedBy: nil)
        XCTAssertEqual(job.state, "running")
        XCTAssertEqual(job.progress?.percent, 30)
        XCTAssertNil(job.result)
        XCTAssertNil(job.endedAt)
        // Every key is written, null or not: clients read one shape.
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(ProtocolCoding.encode(job))) as? [String: Any])
        XCTAssertEqual(
            Set(object.keys),
            [
                "id", "task", "state", "attempt", "worker", "submitter", "submitted_at", "started_at", "ended_at", "cancel_requested", "progress",
                "result", "timeline",
            ])
        XCTAssertTrue(object["result"] is NSNull)
    }
}
