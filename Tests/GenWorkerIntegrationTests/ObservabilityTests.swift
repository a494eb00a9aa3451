import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// `/metrics`, `/healthz`, `/readyz` and the logs of a real `genworker run` process.
final class ObservabilityTests: XCTestCase {
    func value(_ metrics: String, _ prefix: String) -> Double {
        metrics.split(separator: "\n").filter { $0.hasPrefix(prefix) }
            .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
    }

    func testMetricsCountJobsByStatusAndNothingSecretLeaks() throws {
        let harness = try WorkerHarness()
        defer { harness.tearDown() }
        let pid = try harness.spawnWorkerProcess(
            name: "metered", extraConfig: "log:\n  format: json\ndashboard:\n  enabled: true\n  address: 127.0.0.1\n  port: 0")
        defer {
            kill(pid, SIGTERM)
            _ = harness.waitForExit(pid)
        }
        let port = try XCTUnwrap(harness.metricsPort(of: "metered"))
        let atStart = harness.http(port, "/metrics").1
        for family in ["genworker_slots", "genworker_slots_busy", "genworker_broker_connected", "genworker_cancels_ignored_total"] {
            XCTAssertTrue(atStart.contains("# TYPE \(family) "), "\(family) is absent before the first job:\n\(atStart)")
        }
        XCTAssertEqual(harness.http(port, "/healthz").0, 200)
        XCTAssertEqual(harness.http(port, "/readyz").0, 200)
        XCTAssertEqual(harness.http(port, "/nope").0, 404)

        try harness.submit(id: "m-ok")
        XCTAssertEqual(try harness.result("m-ok").status, .completed)
        var metrics = harness.http(port, "/metrics").1
        XCTAssertEqual(value(metrics, #"genworker_jobs_total{task="t2v-A14B",status="completed",reason=""}"#), 1, metrics)

        try harness.submit(id: "m-bad", prompt: "x [[exit=3]] [[step_s=0.01]]")
        try harness.submit(id: "m-long", prompt: "x [[step_s=0.5]]", params: ["sample_steps": 40])
        _ = try harness.waitUntilRunning("m-long")
        try harness.cancel("m-long")
        XCTAssertEqual(try harness.result("m-bad").reason, .exitCode)
        XCTAssertEqual(try harness.result("m-long").reason, .cancelledWhileRunning)
        metrics = harness.http(port, "/metrics").1
        XCTAssertEqual(value(metrics, #"genworker_jobs_total{task="t2v-A14B",status="completed",reason=""}"#), 1)
        XCTAssertEqual(value(metrics, #"genworker_jobs_total{task="t2v-A14B",status="failed",reason="exit_code"}"#), 1)
        XCTAssertEqual(value(metrics, #"genworker_jobs_total{task="t2v-A14B",status="cancelled",reason="cancelled_while_running"}"#), 1)
        XCTAssertEqual(value(metrics, "genworker_cancel_latency_seconds_count"), 1)
        XCTAssertEqual(value(metrics, "genworker_job_run_seconds_count"), 3)
        XCTAssertEqual(value(metrics, "genworker_broker_connected"), 1)
        XCTAssertEqual(value(metrics, "genworker_slots_busy"), 0)

        // The fleet's gauges come from the dashboard's /metrics (served here inside the worker).
        let log0 = try String(contentsOfFile: harness.root.appendingPathComponent("metered.log").path, encoding: .utf8)
        let dashboardPort = try XCTUnwrap(
            log0.range(of: "dashboard on http://127.0.0.1:").map { Int(log0[$0.upperBound...].prefix { $0.isNumber }) } ?? nil)
        let fleet = harness.http(dashboardPort, "/metrics").1
        XCTAssertEqual(value(fleet, #"genworker_fleet_workers{state="online"}"#), 1, fleet)
        XCTAssertEqual(value(fleet, #"genworker_fleet_jobs{state="running"}"#), 0, fleet)
        XCTAssertTrue(fleet.contains(#"genworker_queue_messages{queue="\#(harness.configuration.topology.deadQueue)"}"#), fleet)

        // Every metric the Grafana dashboard and the alert rules name is one a worker or the dashboard exports.
        let exported = Set(
            (metrics + "\n" + fleet).split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        for file in ["docs/grafana/genworker.json", "config/prometheus/genworker-alerts.yml"] {
            let text = try String(contentsOf: TestBroker.repositoryRoot.appendingPathComponent(file), encoding: .utf8)
            let named = Set(
                text.matches(of: /genworker_[a-z_]+/).map { match -> String in
                    var name = String(match.output)
                    for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !exported.contains(name) {
                        name.removeLast(suffix.count)
                    }
                    return name
                })
            XCTAssertFalse(named.isEmpty, file)
            XCTAssertEqual(named.subtracting(exported), [], "\(file) names metrics neither the worker nor the dashboard exports")
        }

        // Logs are JSON lines with the job id on job lines; no password in logs or metrics.
        let log = try String(contentsOfFile: harness.root.appendingPathComponent("metered.log").path, encoding: .utf8)
        let lines = log.split(separator: "\n").filter { $0.hasPrefix("{") }
        XCTAssertGreaterThan(lines.count, 3)
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            XCTAssertNotNil(object["msg"])
            if (object["msg"] as? String)?.contains("completed") == true { XCTAssertEqual(object["job"] as? String, "m-ok") }
        }
        let password = try AMQPConfiguration(url: TestBroker.url).password
        for text in [log, metrics] {
            XCTAssertFalse(text.contains(":\(password)@"), "a password leaked")
            // A broker URL appears only redacted (the dashboard names the node it follows).
            for url in text.matches(of: /amqp:\/\/[^\s"]*/) {
                XCTAssertTrue(url.output.contains(":***@"), "a broker URL leaked: \(url.output)")
            }
        }
    }

    func testReadyzFollowsTheBroker() throws {
        let port = 5689
        let env = ["GENWORKER_BROKER_PORT": String(port)]
        try TestBroker.run(TestBroker.script, ["start"], environment: env)
        defer { _ = try? TestBroker.run(TestBroker.script, ["stop"], environment: env) }
        let harness = try WorkerHarness { $0.amqp.url = "amqp://guest:guest@127.0.0.1:\(port)/" }
        defer { harness.tearDown() }
        let pid = try harness.spawnWorkerProcess(name: "ready", extraConfig: "")
        defer {
            kill(pid, SIGKILL)
            _ = harness.waitForExit(pid)
        }
        let http = try XCTUnwrap(harness.metricsPort(of: "ready"))
        XCTAssertEqual(harness.http(http, "/readyz").0, 200)
        try TestBroker.run(TestBroker.script, ["stop"], environment: env)
        var deadline = Date().addingTimeInterval(10)
        while harness.http(http, "/readyz").0 != 503, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertEqual(harness.http(http, "/readyz").0, 503)
        XCTAssertEqual(harness.http(http, "/healthz").0, 200, "alive even while the broker is away")
        try TestBroker.run(TestBroker.script, ["start"], environment: env)
        deadline = Date().addingTimeInterval(20)
        while harness.http(http, "/readyz").0 != 200, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
        XCTAssertEqual(harness.http(http, "/readyz").0, 200, "not ready again after the broker came back")
    }
}
