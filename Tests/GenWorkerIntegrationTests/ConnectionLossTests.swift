import AMQP
import Foundation
import GenWorker
import TestSupport
import XCTest

/// The broker drops the worker's connection mid-job: the broker requeues the job, so the
/// worker stops its local run (two GPUs must not do the same job), reconnects, and the job
/// runs again to exactly one result.
final class ConnectionLossTests: XCTestCase {
    var harness: WorkerHarness!

    override func setUpWithError() throws { harness = try WorkerHarness() }
    override func tearDown() { harness?.tearDown() }

    /// Closes the broker side of every connection whose name contains `name`.
    func closeConnections(named name: String) throws -> Int {
        let listing = try TestBroker.run(TestBroker.script, ["ctl", "-q", "list_connections", "pid", "client_properties"])
        var closed = 0
        for line in listing.split(separator: "\n") where line.contains(name) {
            guard let pid = line.split(separator: "\t").first else { continue }
            try TestBroker.run(TestBroker.script, ["ctl", "-q", "close_connection", String(pid), "test: connection loss"])
            closed += 1
        }
        return closed
    }

    func testConnectionLossStopsTheLocalRunAndTheJobRunsAgainOnce() throws {
        let name = "loss-\(UUID().uuidString.prefix(6))"
        try harness.startWorker(name: name)
        try harness.submit(id: "lossy", prompt: "steady [[step_s=0.1]]", params: ["sample_steps": 30])
        let firstPid = try harness.waitUntilRunning("lossy")
        try FileManager.default.removeItem(at: harness.outputs.appendingPathComponent("lossy.mp4.argv.json"))
        XCTAssertEqual(try closeConnections(named: "genworker \(name)"), 1)
        // The local run stops; the broker gives the job back and the reconnected worker runs it again.
        let deadline = Date().addingTimeInterval(10)
        while processIsAlive(firstPid), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(processIsAlive(firstPid), "the run of a lost delivery went on")
        let secondPid = try harness.waitUntilRunning("lossy")
        XCTAssertNotEqual(firstPid, secondPid)
        let result = try harness.result("lossy")
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.redelivered, true)
        // Later jobs run normally, and "lossy" got exactly one result (harness.result asserts no second).
        try harness.submit(id: "after-loss")
        XCTAssertEqual(try harness.result("after-loss").status, .completed)
        XCTAssertThrowsError(try harness.result("lossy-duplicate-probe", timeout: 1))
    }
}
