import AMQP
import Foundation
import GenWorker
import Synchronization
import TestSupport
import XCTest

/// A worker given a cluster's nodes (`amqp.urls`, scripts/cluster.sh) connects to the first
/// that answers and, when that node goes away for good, carries on through another.
final class ClusterFailoverTests: XCTestCase {
    static let script = TestBroker.repositoryRoot.appendingPathComponent("scripts/cluster.sh").path

    nonisolated(unsafe) static var startFailure: Error?

    override class func setUp() {
        super.setUp()
        do { _ = try TestBroker.run(script, ["start"]) } catch { startFailure = error }
    }

    override class func tearDown() {
        _ = try? TestBroker.run(script, ["stop"])
        super.tearDown()
    }

    func testTheWorkerFailsOverWhenItsNodeStopsForGood() throws {
        if let failure = Self.startFailure { throw failure }
        let urls = try TestBroker.run(Self.script, ["urls"]).trimmingCharacters(in: .whitespacesAndNewlines)
            .split(separator: ",").map(String.init)
        XCTAssertEqual(urls.count, 3)
        XCTAssertEqual(try TestBroker.run(Self.script, ["status"]).split(separator: "\n").filter { $0.contains(": up") }.count, 3)
        // The test's own client talks to node 2, which stays up.
        let harness = try WorkerHarness { $0.amqp.url = urls[1] }
        defer { harness.tearDown() }
        let worker = try harness.startWorker(name: "fleet-1") {
            $0.amqp.urls = urls
            $0.amqp.reconnectMaxSeconds = 1
        }
        try harness.submit(id: "before")
        XCTAssertEqual(try harness.result("before").status, .completed)

        // A job running while its node goes away: the worker stops that run (its delivery is
        // gone), reconnects through another node, and the job runs again there, once.
        try harness.submit(id: "across", prompt: "steady [[step_s=0.1]]", params: ["sample_steps": 30])
        _ = try harness.waitUntilRunning("across")
        // Watch the worker while node 1 stops (the stop waits for the node to be gone, and the
        // worker may have reconnected by then).
        let sawLoss = Atomic<Bool>(false)
        let watching = Atomic<Bool>(true)
        let watcher = Thread {
            while watching.load(ordering: .relaxed) {
                if !worker.isConsuming { sawLoss.store(true, ordering: .relaxed) }
                usleep(5000)
            }
        }
        watcher.start()
        try TestBroker.run(Self.script, ["stop-node", "1"])
        let deadline = Date().addingTimeInterval(60)
        while !(sawLoss.load(ordering: .relaxed) && worker.isConsuming), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        watching.store(false, ordering: .relaxed)
        XCTAssertTrue(sawLoss.load(ordering: .relaxed), "the worker did not notice its node going away")
        XCTAssertTrue(worker.isConsuming, "the worker did not reconnect through another node")
        let across = try harness.result("across", timeout: 60)
        XCTAssertEqual(across.status, .completed)
        XCTAssertEqual(across.redelivered, true)

        try harness.submit(id: "after")
        XCTAssertEqual(try harness.result("after").status, .completed)
    }
}
