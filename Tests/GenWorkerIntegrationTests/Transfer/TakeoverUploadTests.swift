import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import TestSupport
import XCTest

/// A takeover in the middle of an upload: the owner's whole process group is stopped
/// (Ctrl-Z) while its upload step runs, another worker takes the job after the lease and
/// stores its own video. The loser's upload goes to its own attempt's key, so the object the
/// result names is the winner's, whatever the loser did or does after it wakes; and the
/// loser's upload process, which runs in a session of its own, is killed by the frozen
/// worker's watchdog at the lease deadline like a generator.
final class TakeoverUploadTests: XCTestCase {
    func testAFrozenOwnersUploadNeverReplacesTheWinnersObject() throws {
        let harness = try WorkerHarness()  // lease 6 s
        let world = try TransferWorld()
        var spawned: [pid_t] = []
        defer {
            for pid in spawned {
                kill(-pid, SIGCONT)
                kill(pid, SIGKILL)
                _ = harness.waitForExit(pid, timeout: 10)
            }
            harness.tearDown()
            world.tearDown()
        }
        let prefix = "tests/\(UUID().uuidString.prefix(8))/"
        let store = """
            storage:
              endpoint: \(TestS3.url)
              bucket: \(TestS3.bucket)
              addressing: path
              multipart_threshold_mb: 5
              part_size_mb: 5
            """
        func spawn(_ name: String, group: Bool) throws -> pid_t {
            let pid = try harness.spawnWorkerProcess(
                name: name, extraConfig: store, outputsExtra: "  store: s3\n  prefix: \(prefix)", environment: TestS3.environment,
                ownProcessGroup: group)
            spawned.append(pid)
            return pid
        }
        let frozen = try spawn("frozen", group: true)
        // 1.2 GB: an upload that outlasts the lease.
        try harness.submit(id: "tk", prompt: "a fox [[step_s=0.01]] [[video_mb=1200]]", params: ["sample_steps": 5])
        let deadline = Date().addingTimeInterval(30)
        while !StoredOutputTests.transferRunning(for: "tk") {
            guard Date() < deadline else { return XCTFail("the upload step never started") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertEqual(kill(-frozen, SIGSTOP), 0)
        _ = try spawn("other", group: false)
        let second = Date().addingTimeInterval(60)
        while !StoredOutputTests.transferRunning(for: "tk", attempt: 2) && Date() < second { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertTrue(StoredOutputTests.transferRunning(for: "tk", attempt: 2), "the winner's upload never started")
        XCTAssertFalse(StoredOutputTests.transferRunning(for: "tk", attempt: 1), "the frozen owner's upload still runs beside the winner's")
        let result = try harness.result("tk", timeout: 90)
        XCTAssertEqual(result.event, .completed, result.message ?? "")
        XCTAssertEqual(result.worker, "other")
        let uri = try XCTUnwrap(result.outputURI)
        XCTAssertTrue(uri.hasSuffix("/tk/2.mp4"), "the winner is attempt 2: \(uri)")
        // Wake the loser; give it time to do whatever it would do.
        XCTAssertEqual(kill(-frozen, SIGCONT), 0)
        Thread.sleep(forTimeInterval: 8)
        let back = world.root.appendingPathComponent("winner.mp4").path
        XCTAssertEqual(try world.curl(try XCTUnwrap(result.outputURL), to: back), 200)
        XCTAssertEqual(try TransferWorld.sha256(back), result.outputSHA256, "the object the result names is not the winner's")
    }
}
