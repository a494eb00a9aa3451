import Foundation
import GenWorkerCore
import XCTest

@testable import GenWorkerWeb

/// A job whose video was stored: its page plays it from the store's URL and names the object.
final class DashboardStoredVideoTests: XCTestCase {
    func testAStoredVideoPlaysFromItsURLAndItsObjectIsNamed() throws {
        let now = Date()
        let view = FleetView(retention: 3600, maxJobs: 100)
        view.fold(
            .submitted(id: "s", task: "t2v-A14B", submitter: nil, at: now),
            params: JobMessage(id: "s", task: "t2v-A14B", params: ["prompt": "a fox"]), at: now, live: true)
        var claim = LedgerRecord(kind: .claim, worker: "w1", id: "s")
        claim.job = "{}"
        view.fold(.record(claim), params: nil, at: now, live: true)
        var end = LedgerRecord(kind: .end, worker: "w1", id: "s", attempt: 1)
        var result = JobEvent(id: "s", task: "t2v-A14B", event: .completed, worker: "w1")
        result.outputURI = "s3://videos/genworker/s/1.mp4"
        result.outputURL = "https://videos.s3.example/genworker/s/1.mp4?X-Amz-Signature=abc"
        end.result = result
        view.fold(.record(end), params: nil, at: now, live: true)
        let page = try XCTUnwrap(try Pages(configuration: WorkerConfiguration(), view: view).job("s"))
        XCTAssertTrue(
            page.contains(#"<video id="video" src="https://videos.s3.example/genworker/s/1.mp4?X-Amz-Signature&#61;abc""#)
                || page.contains("src=\"https://videos.s3.example/genworker/s/1.mp4?X-Amz-Signature=abc\""), page)
        XCTAssertTrue(page.contains("s3://videos/genworker/s/1.mp4"), page)
    }
}
