import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// The broker drops the worker's connection mid-job: the job's delivery was acked when it
/// was claimed, so nothing is requeued; the run goes on, the worker reconnects and
/// publishes the one result.
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

    func testConnectionLossDoesNotStopTheRunAndTheJobEndsOnce() throws {
        let name = "loss-\(UUID().uuidString.prefix(6))"
        try harness.startWorker(name: name)
        // 9 s: longer than rabbitmqctl takes to close the connection on a loaded machine.
        try harness.submit(id: "lossy", prompt: "steady [[step_s=0.3]]", params: ["sample_steps": 30])
        let pid = try harness.waitUntilRunning("lossy")
        XCTAssertEqual(try closeConnections(named: "genworker \(name)"), 1)
        // The job is the worker's through its lease in the ledger, not through the connection:
        // the run goes on, the worker reconnects and publishes the one result.
        Thread.sleep(forTimeInterval: 1)
        XCTAssertTrue(processIsAlive(pid), "the run stopped with the connection")
        let result = try harness.result("lossy")
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.redelivered, false)
        XCTAssertEqual(harness.standinRecord("lossy")?.pid, pid, "it did not start again")
        // Later jobs run normally, and "lossy" got exactly one result (harness.result asserts no second).
        try harness.submit(id: "after-loss")
        XCTAssertEqual(try harness.result("after-loss").status, .completed)
        XCTAssertThrowsError(try harness.result("lossy-duplicate-probe", timeout: 1))
    }
}
