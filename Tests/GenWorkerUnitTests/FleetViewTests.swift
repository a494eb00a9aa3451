import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// The dashboard's view of the fleet, without a broker: summaries, filters, the max_jobs
/// cap, live updates to watchers, and the config's refusal of plain passwords.
final class FleetViewTests: XCTestCase {
    let now = Date()

    func claim(_ id: String, worker: String = "w1") -> LedgerEntry {
        var record = LedgerRecord(kind: .claim, worker: worker, id: id)
        record.job = "{}"
        return .record(record)
    }

    func end(_ id: String, status: JobEventKind = .completed, worker: String = "w1") -> LedgerEntry {
        var record = LedgerRecord(kind: .end, worker: worker, id: id, attempt: 1)
        record.result = JobEvent(id: id, task: "t2v-A14B", event: status, worker: worker)
        return .record(record)
    }

    func submit(_ view: FleetView, _ id: String, prompt: String = "a fox") {
        let message = JobMessage(id: id, task: "t2v-A14B", params: ["prompt": .string(prompt)])
        view.fold(.submitted(id: id, task: "t2v-A14B", submitter: nil, at: now), params: message, at: now, live: true)
    }

    func testSummariesFiltersAndProgress() {
        let view = FleetView(retention: 3600, maxJobs: 1000)
        submit(view, "a", prompt: "a red fox")
        submit(view, "b", prompt: "a blue whale")
        view.fold(claim("a"), params: nil, at: now, live: true)
        var progress = JobEvent(id: "a", task: "t2v-A14B", event: .progress, worker: "w1")
        progress.progress = JobProgress(step: 5, total: 40, percent: 12, etaSeconds: 60, phase: "generating")
        view.progress(progress)
        XCTAssertEqual(view.jobs(state: "running").map(\.id), ["a"])
        XCTAssertEqual(view.jobs(state: "queued").map(\.id), ["b"])
        XCTAssertEqual(view.jobs(text: "WHALE").map(\.id), ["b"], "text matches the prompt, case-insensitively")
        XCTAssertEqual(view.jobs(worker: "w1").map(\.id), ["a"])
        let a = view.job("a")!.summary
        XCTAssertEqual([a.step, a.total, a.percent, a.etaSeconds], [5, 40, 12, 60])
        view.fold(.cancelled(id: "a", user: nil), params: nil, at: now, live: true)
        XCTAssertTrue(view.job("a")!.summary.cancelling, "cancelling… until the result comes")
        view.fold(end("a", status: .cancelled), params: nil, at: now, live: true)
        let ended = view.job("a")!.summary
        XCTAssertFalse(ended.cancelling)
        XCTAssertEqual(ended.state, "ended")
        XCTAssertEqual(ended.status, "cancelled")
        XCTAssertEqual(view.jobs(state: "cancelled").map(\.id), ["a"])
    }

    /// A job given back (a machine's fault, a shutdown) and claimed again: before, the next
    /// attempt showed the last one's bar (80 %) until it reported its own (adversarial review).
    func testAnAttemptGivenBackTakesItsProgressWithIt() {
        let view = FleetView(retention: 3600, maxJobs: 1000)
        submit(view, "a")
        view.fold(claim("a"), params: nil, at: now, live: true)
        var progress = JobEvent(id: "a", task: "t2v-A14B", event: .progress, worker: "w1")
        progress.progress = JobProgress(step: 32, total: 40, percent: 80, etaSeconds: 10, phase: "generating")
        view.progress(progress)
        XCTAssertEqual(view.job("a")!.summary.percent, 80)
        var release = LedgerRecord(kind: .release, worker: "w1", id: "a", attempt: 1)
        release.reason = "gpu_error"
        view.fold(.record(release), params: nil, at: now, live: true)
        view.fold(claim("a", worker: "w2"), params: nil, at: now, live: true)
        XCTAssertEqual(view.job("a")!.summary.state, "running")
        XCTAssertNil(view.job("a")!.summary.percent, "the given-back attempt's bar")
    }

    func testMemoryIsCappedByMaxJobsOldestEndedFirst() {
        let view = FleetView(retention: 3600, maxJobs: 100)
        for i in 0..<200 {
            let id = "j\(i)"
            submit(view, id)
            view.fold(claim(id), params: nil, at: now.addingTimeInterval(Double(i)), live: true)
            if i < 190 { view.fold(end(id), params: nil, at: now.addingTimeInterval(Double(i)), live: true) }
        }
        XCTAssertLessThanOrEqual(view.health.jobs, 110)
        XCTAssertNil(view.job("j0"), "the oldest ended job went first")
        XCTAssertNotNil(view.job("j199"), "running jobs stay")
        XCTAssertNotNil(view.job("j195"))
    }

    func testWatchersGetEveryChangeAndShutdownEndsThem() async {
        let view = FleetView(retention: 3600, maxJobs: 100)
        let (id, updates) = view.subscribe()
        XCTAssertEqual(view.watchers, 1)
        submit(view, "live")
        view.fold(claim("live"), params: nil, at: now, live: true)
        view.finishAll()
        var got: [String] = []
        for await update in updates { got.append(update) }
        XCTAssertEqual(got.count, 2)
        XCTAssertTrue(got.last?.contains(#""state":"running""#) ?? false, got.last ?? "")
        view.unsubscribe(id)
        XCTAssertEqual(view.watchers, 0)
    }
}
