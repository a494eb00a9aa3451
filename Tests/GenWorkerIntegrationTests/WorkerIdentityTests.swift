import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// Two workers with the same name on one machine: the second refuses to start and the
/// first one's running generator is untouched (they would share the owner marker).
final class WorkerIdentityTests: XCTestCase {
    func testASecondWorkerWithTheSameNameRefusesToStartAndKillsNothing() throws {
        let harness = try WorkerHarness()
        defer { harness.tearDown() }
        let first = try harness.spawnWorkerProcess(name: "twin")
        defer {
            kill(first, SIGKILL)
            _ = harness.waitForExit(first)
        }
        try harness.submit(id: "twin-job", prompt: "steady [[step_s=0.1]]", params: ["sample_steps": 30])
        let generator = try harness.waitUntilRunning("twin-job")

        let config = try harness.writeConfigFile(name: "twin")  // the same name, the same lock directory
        let executable = TestBroker.genworkerExecutable
        let errPath = harness.root.appendingPathComponent("twin-2.err").path
        let (status, _) = try TestBroker.runCapturing(executable, ["run", "--config", config], stderrPath: errPath)
        let err = try String(contentsOfFile: errPath, encoding: .utf8)
        XCTAssertEqual((status >> 8) & 0xff, 75, err)
        XCTAssertTrue(err.contains("genworker: another live worker is 'twin'"), err)
        XCTAssertTrue(err.contains("(pid \(first))"), err)
        XCTAssertTrue(processIsAlive(generator), "the second worker killed the first one's generator")

        let result = try harness.result("twin-job")
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "twin")
    }
}
