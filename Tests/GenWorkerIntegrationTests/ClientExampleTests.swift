import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// The Python (pika) and shell (amqp-tools) clients of examples/, end to end against the
/// real broker and a real worker.
final class ClientExampleTests: XCTestCase {
    var harness: WorkerHarness!

    override func setUpWithError() throws {
        harness = try WorkerHarness()
        try harness.startWorker(name: "clients") { $0.progress.intervalMilliseconds = 100 }
    }

    override func tearDown() { harness?.tearDown() }

    var python: String { TestBroker.repositoryRoot.appendingPathComponent("examples/python/genworker_client.py").path }
    var shell: String { TestBroker.repositoryRoot.appendingPathComponent("examples/shell/genworker.sh").path }
    var pikaURL: String { TestBroker.url + "%2f" }
    var stderrPath: String { harness.root.appendingPathComponent("client.stderr").path }

    func lastJSON(_ output: String) throws -> [String: Any] {
        let line = try XCTUnwrap(output.split(separator: "\n").last { $0.hasPrefix("{") }, output)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func testPythonClientSubmitsFollowsProgressAndGetsTheResult() throws {
        let (status, output) = try TestBroker.runCapturing(
            "/usr/bin/env",
            [
                "python3", python, "--url", pikaURL, "--prefix", harness.prefix, "submit", "--task", "t2v-A14B", "--id", "py-ok",
                "--param", "prompt=A red fox [[step_s=0.05]]", "--param", "size=832*480", "--param", "sample_steps=20", "--wait",
            ], stderrPath: stderrPath)
        XCTAssertEqual(status, 0, output)
        let result = try lastJSON(output)
        XCTAssertEqual(result["status"] as? String, "completed")
        XCTAssertEqual(result["id"] as? String, "py-ok")
        let progress = try String(contentsOfFile: stderrPath, encoding: .utf8)
        XCTAssertTrue(progress.contains("generating"), "no progress shown: \(progress)")
        XCTAssertTrue(progress.contains("/20"), progress)
    }

    func testPythonClientSubmitThenCancel() throws {
        let (status, output) = try TestBroker.runCapturing(
            "/usr/bin/env",
            [
                "python3", python, "--url", pikaURL, "--prefix", harness.prefix, "submit", "--task", "t2v-A14B", "--id", "py-cancel",
                "--param", "prompt=long [[step_s=0.5]]", "--param", "sample_steps=40", "--cancel-after", "0.3",
            ], stderrPath: stderrPath)
        XCTAssertNotEqual(status, 0, "a cancelled job is not a success")
        let result = try lastJSON(output)
        XCTAssertEqual(result["status"] as? String, "cancelled")
        XCTAssertEqual(result["reason"] as? String, "cancelled_while_running")
    }

    func testShellClientSubmitAndCancel() throws {
        let env = ["AMQP_URL": String(TestBroker.url.dropLast()), "GENWORKER_PREFIX": harness.prefix]
        let output = try TestBroker.run(
            shell, ["submit", "sh-ok", "t2v-A14B", #"{"prompt":"shell [[step_s=0.01]]","sample_steps":5}"#],
            environment: env)
        XCTAssertEqual(try lastJSON(output)["status"] as? String, "completed")

        try harness.submit(id: "sh-cancel", prompt: "long [[step_s=0.5]]", params: ["sample_steps": 40])
        _ = try harness.waitUntilRunning("sh-cancel")
        try TestBroker.run(shell, ["cancel", "sh-cancel"], environment: env)
        XCTAssertEqual(try harness.result("sh-cancel").reason, .cancelledWhileRunning)
    }
}
