import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// RabbitMQ closes a channel whose delivery stays unacked past consumer_timeout. A worker
/// acks a job's delivery once the ledger has given it the job, so on a node with
/// consumer_timeout = 5 s, checked every second (`channel_tick_interval`), a 15 s job runs
/// once and completes.
final class ConsumerTimeoutTests: XCTestCase {
    let port = 5699
    var environment: [String: String] {
        [
            "GENWORKER_BROKER_PORT": String(port),
            "GENWORKER_BROKER_EXTRA_CONF": "consumer_timeout = 5000",
            "GENWORKER_BROKER_ADVANCED": "[{rabbit, [{channel_tick_interval, 1000}]}].",
        ]
    }

    override func setUpWithError() throws { try TestBroker.run(TestBroker.script, ["start"], environment: environment) }
    override func tearDownWithError() throws { try TestBroker.run(TestBroker.script, ["stop"], environment: environment) }

    func testAJobLongerThanConsumerTimeoutRunsOnce() throws {
        let harness = try WorkerHarness {
            $0.amqp.url = "amqp://guest:guest@127.0.0.1:\(self.port)/"
            $0.topology.deliveryLimit = 2
        }
        defer { harness.tearDown() }
        let pid = try harness.spawnWorkerProcess(name: "overtime")
        defer {
            kill(pid, SIGKILL)
            _ = harness.waitForExit(pid)
        }
        let started = Date()
        try harness.submit(id: "overtime", prompt: "long [[step_s=0.5]]", params: ["sample_steps": 30])
        let generator = try harness.waitUntilRunning("overtime")
        let result = try harness.result("overtime", timeout: 60)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.redelivered, false)
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 15, "the job outlived consumer_timeout")
        XCTAssertEqual(harness.standinRecord("overtime")?.pid, generator, "one run")
        let log = (try? String(contentsOfFile: harness.root.appendingPathComponent("overtime.log").path, encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains("consumer_timeout"), log)
        XCTAssertFalse(log.contains("broker connection ended"), log)
    }
}
