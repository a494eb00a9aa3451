import AMQP
import Foundation
import GenWorker
import TestSupport
import XCTest

/// RabbitMQ closes a channel whose delivery stays unacked past consumer_timeout and requeues
/// the job. On a second node with consumer_timeout = 3 s, checked every second (the
/// `channel_tick_interval` of advanced.config; 60 s by default), the worker must say so
/// plainly and treat it as a connection loss: stop the local run, reconnect.
final class ConsumerTimeoutTests: XCTestCase {
    let port = 5699
    var environment: [String: String] {
        [
            "GENWORKER_BROKER_PORT": String(port),
            "GENWORKER_BROKER_EXTRA_CONF": "consumer_timeout = 3000",
            "GENWORKER_BROKER_ADVANCED": "[{rabbit, [{channel_tick_interval, 1000}]}].",
        ]
    }

    override func setUpWithError() throws { try TestBroker.run(TestBroker.script, ["start"], environment: environment) }
    override func tearDownWithError() throws { try TestBroker.run(TestBroker.script, ["stop"], environment: environment) }

    func testConsumerTimeoutIsRecognisedLoggedAndTreatedAsALoss() throws {
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
        try harness.submit(id: "overtime", prompt: "too long [[step_s=0.5]]", params: ["sample_steps": 40])
        let generator = try harness.waitUntilRunning("overtime")
        let log = harness.root.appendingPathComponent("overtime.log").path
        let deadline = Date().addingTimeInterval(15)
        var text = ""
        while !(text.contains("consumer_timeout expired") && text.contains("reconnecting")), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        }
        XCTAssertTrue(text.contains("RabbitMQ's consumer_timeout expired"), text)
        XCTAssertTrue(text.contains("reconnecting"), text)
        let stopBy = Date().addingTimeInterval(5)
        while processIsAlive(generator), Date() < stopBy { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(processIsAlive(generator), "the run whose delivery the broker took back went on")
        // It runs again and again; at the delivery limit the client gets a result, not silence.
        let result = try harness.result("overtime", timeout: 60)
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.reason, .deliveryLimit)
        let dead = try harness.peek(queue: harness.configuration.topology.deadQueue, expecting: 1)
        XCTAssertEqual(dead.count, 1)
    }
}
