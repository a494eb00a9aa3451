import XCTest

@testable import GenWorkerCore
@testable import Supervision

final class ProgressAndLogTailTests: XCTestCase {
    func testTqdmBarsAndPhasesBecomeProgress() {
        var parser = ProgressParser()
        XCTAssertTrue(parser.consume("[2025-07-28 10:00:00,000] INFO: Creating WanT2V pipeline."))
        XCTAssertEqual(parser.progress?.phase, "loading")
        XCTAssertFalse(parser.consume("[2025-07-28 10:00:01,000] INFO: Creating WanT2V pipeline."), "the same phase again changes nothing")
        XCTAssertTrue(parser.consume("INFO: Generating video ..."))
        XCTAssertTrue(parser.consume(" 45%|████▌     | 18/40 [07:02<08:36, 23.48s/it]"))
        XCTAssertEqual(parser.progress, JobProgress(step: 18, total: 40, percent: 45, etaSeconds: 516, phase: "generating", clip: 1))
        XCTAssertFalse(parser.consume(" 45%|████▌     | 18/40 [07:02<08:36, 23.48s/it]"))
        XCTAssertTrue(parser.consume("100%|██████████| 40/40 [1:02:03<00:00, 23.48s/it]"))
        // s2v / animate: a bar that starts again is the next clip.
        XCTAssertTrue(parser.consume("  5%|▌         | 2/40 [00:40<1:02:03, 20.00s/it]"))
        XCTAssertEqual(parser.progress?.clip, 2)
        XCTAssertEqual(parser.progress?.etaSeconds, 3723)
        XCTAssertTrue(parser.consume("INFO: Saving generated video to /out/a.mp4"))
        XCTAssertEqual(parser.progress?.phase, "saving")
        XCTAssertFalse(parser.consume("some other line | with pipes | 3/x"))
    }

    func testETAUnknownAndMalformedBars() {
        XCTAssertNil(ProgressParser.bar("  0%|          | 0/40 [00:00<?, ?it/s]")?.eta)
        XCTAssertEqual(ProgressParser.bar("  0%|          | 0/40 [00:00<?, ?it/s]")?.total, 40)
        XCTAssertNil(ProgressParser.bar("50%| 1/0 [00:01<00:01]"))
        XCTAssertNil(ProgressParser.bar("no bar here"))
        XCTAssertEqual(ProgressParser.seconds("1:00:00"), 3600)
        XCTAssertNil(ProgressParser.seconds("?"))
    }

    func testLogTailSplitsOnNewlinesAndCarriageReturnsAndStaysBounded() {
        var tail = LogTail(maxLines: 3, maxLineBytes: 8)
        var seen: [String] = []
        let text = Array("one\ntwo\r\rthree\nfour-is-long\nfive".utf8)
        text.withUnsafeBytes { tail.append($0, onLine: { seen.append($0) }) }
        XCTAssertEqual(seen, ["one", "two", "three", "four-is- […]"], "empty lines are skipped, long ones cut")
        tail.flush(onLine: { seen.append($0) })
        XCTAssertEqual(seen.last, "five")
        XCTAssertEqual(tail.lines, ["three", "four-is- […]", "five"], "only the last maxLines lines")
        tail.flush(onLine: { seen.append($0) })
        XCTAssertEqual(seen.count, 5, "flushing nothing adds nothing")
    }
}
