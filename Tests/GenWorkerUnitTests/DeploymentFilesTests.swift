import Foundation
import GenWorkerCore
import Supervision
import TestSupport
import XCTest

/// No Docker engine or systemd runs here, so the deployment files are kept honest by what can
/// be checked: they use the broker config the tests use, the release build CI runs, and
/// worker configs that parse.
final class DeploymentFilesTests: XCTestCase {
    func file(_ path: String) throws -> String {
        try String(contentsOf: TestBroker.repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    func testDockerFilesUseTheTestedBrokerConfigAndBuild() throws {
        let compose = try file("docker/compose.yaml")
        XCTAssertTrue(compose.contains("../config/rabbitmq.conf:/etc/rabbitmq/conf.d/"), "compose must mount the tested rabbitmq.conf")
        XCTAssertTrue(compose.contains("rabbitmq:3.10"))
        let workers = compose.matches(of: /GENWORKER_WORKER_NAME: (\S+)/).map { String($0.1) }
        XCTAssertEqual(workers, ["worker-1", "worker-2", "worker-gpu"], "two demo workers and the gpu profile's, each its own name")
        XCTAssertTrue(compose.contains("driver: nvidia") && compose.contains("capabilities: [gpu]"), "the gpu worker reserves a GPU")
        for service in ["dashboard:", "prometheus:", "grafana:"] { XCTAssertTrue(compose.contains("\n  \(service)\n"), service) }
        XCTAssertTrue(try file("config/prometheus/prometheus.yml").contains("- genworker-alerts.yml"), "Prometheus loads the tested rules")
        let dockerfile = try file("docker/Dockerfile")
        XCTAssertTrue(dockerfile.contains("RUN scripts/build-release.sh"), "the Dockerfile must build as CI does")
        XCTAssertTrue(dockerfile.contains("librabbitmq4"))
        XCTAssertTrue(try file(".ci/run").contains("scripts/build-release.sh"), "CI must run the Dockerfile's build")
        XCTAssertTrue(try file("scripts/broker.sh").contains("config/rabbitmq.conf"))
        XCTAssertTrue(try file("config/rabbitmq.conf").contains("consumer_timeout = 21600000"))
    }

    func testShippedWorkerConfigsParse() throws {
        for path in ["config/genworker.yaml", "config/docker-demo.yaml"] {
            let url = TestBroker.repositoryRoot.appendingPathComponent(path).path
            XCTAssertNoThrow(try WorkerConfiguration.load(path: url, environment: ["GENWORKER_WORKER_NAME": "w"]), path)
        }
        let demo = try WorkerConfiguration.load(
            path: TestBroker.repositoryRoot.appendingPathComponent("config/docker-demo.yaml").path,
            environment: ["GENWORKER_WORKER_NAME": "worker-9", "GENWORKER_AMQP_URL": "amqp://a:b@rabbitmq/"])
        XCTAssertEqual(demo.worker.name, "worker-9")
        XCTAssertEqual(demo.amqp.url, "amqp://a:b@rabbitmq/")
        // The compose stop grace must cover the demo's drain.
        XCTAssertLessThan(demo.shutdown.drainTimeout, .seconds(60))
    }

    func testSystemdUnitKillsTheWholeGroupAndWaitsForTheDrain() throws {
        let unit = try file("config/genworker.service")
        XCTAssertTrue(unit.contains("KillMode=control-group"))
        let stop = try XCTUnwrap(unit.split(separator: "\n").first { $0.hasPrefix("TimeoutStopSec=") }).split(separator: "=")[1]
        let defaults = WorkerConfiguration()
        XCTAssertGreaterThan(Int(stop) ?? 0, Int(defaults.shutdown.drainTimeout.components.seconds + defaults.supervisor.grace.components.seconds))
        XCTAssertTrue(unit.contains("ExecStart=/usr/local/bin/genworker run"))
    }
}
