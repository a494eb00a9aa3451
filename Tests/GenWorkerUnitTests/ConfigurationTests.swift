import Foundation
import TestSupport
import XCTest

@testable import GenWorkerCore
@testable import Supervision

final class ConfigurationTests: XCTestCase {
    func testDefaultsAndOverrides() throws {
        let c = try WorkerConfiguration.parse(
            yaml: """
                amqp:
                  url: amqp://u:p@broker:5672/
                worker:
                  slots: 2
                  tasks: [t2v-A14B, ti2v-5B]
                wan:
                  python: /venv/bin/python
                  repo: /opt/Wan2.2
                  checkpoints: /models
                inputs:
                  roots: [/data/in]
                outputs:
                  dir: /data/out
                supervisor:
                  grace_s: 45
                  poll_ms: 50
                """)
        XCTAssertEqual(c.worker.slots, 2)
        XCTAssertEqual(c.worker.tasks, [.t2vA14B, .ti2v5B])
        XCTAssertEqual(c.supervisor.grace, .seconds(45))
        XCTAssertEqual(c.supervisor.pollInterval, .milliseconds(50))
        XCTAssertEqual(c.topology.jobsQueue, "genworker.jobs")
        XCTAssertEqual(c.jobs.maxBodyBytes, 1 << 20)
        XCTAssertEqual(c.inputs.roots, ["/data/in"])
    }

    func testEnvironmentOverridesTheURL() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-\(UUID()).yaml").path
        try "amqp:\n  url: amqp://a@b/\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let c = try WorkerConfiguration.load(path: path, environment: ["GENWORKER_AMQP_URL": "amqp://secret@other/"])
        XCTAssertEqual(c.amqp.url, "amqp://secret@other/")
    }

    func testUnknownKeysAndBadValuesNameTheKey() {
        let cases: [(String, String)] = [
            ("supervisor:\n  grac_s: 3\n", "supervisor.grac_s"),
            ("bogus: 1\n", "'bogus'"),
            ("supervisor:\n  poll_ms: fast\n", "supervisor.poll_ms"),
            ("worker:\n  slots: 0\n", "worker.slots"),
            ("worker:\n  tasks: [t2v-A14B, x2v]\n", "worker.tasks"),
            ("inputs:\n  roots: /one/path\n", "inputs.roots"),
            ("amqp:\n  url: http://x/\n", "amqp.url"),
            ("jobs:\n  default_timeout_s: 100\n  max_timeout_s: 10\n", "jobs.default_timeout_s"),
            ("- a list\n", "mapping"),
        ]
        for (yaml, key) in cases {
            XCTAssertThrowsError(
                try {
                    let c = try WorkerConfiguration.parse(yaml: yaml)
                    try c.validate()
                }(), yaml
            ) { error in
                XCTAssertTrue("\(error)".contains(key), "\(error) should name \(key)")
            }
        }
    }

    func testShippedConfigFilesParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try WorkerConfiguration.load(path: root.appendingPathComponent("config/genworker.yaml").path, environment: [:])
        XCTAssertEqual(c.supervisor.grace, .seconds(30))
    }
}

/// Defaults live in one place (the properties); the shipped file and the README follow them.
final class ConfigurationDefaultsTests: XCTestCase {
    var root: URL { TestBroker.repositoryRoot }

    func testTheShippedConfigIsExactlyTheDefaults() throws {
        let text = try String(contentsOf: root.appendingPathComponent("config/genworker.yaml"), encoding: .utf8)
        XCTAssertEqual(try WorkerConfiguration.parse(yaml: text), WorkerConfiguration())
        for key in WorkerConfiguration.allKeys {
            let name = String(key.split(separator: ".")[1])
            XCTAssertTrue(text.contains("\n  \(name):") || text.contains("\n  # \(name):"), "config/genworker.yaml lacks \(key)")
        }
    }

    func testTheReadmeReferenceListsEveryKeyAndNoOther() throws {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(readme.range(of: "### Configuration reference"))
        let rows = readme[section.upperBound...].split(separator: "\n").filter { $0.hasPrefix("| `") }
        let documented = rows.compactMap { $0.dropFirst(3).split(separator: "`").first.map(String.init) }
        XCTAssertEqual(Set(documented), Set(WorkerConfiguration.allKeys))
        XCTAssertEqual(documented.count, WorkerConfiguration.allKeys.count, "each key once")
    }

    func testEnvironmentOverridesApplyWithoutAConfigFile() throws {
        let c = try WorkerConfiguration.load(path: nil, environment: ["GENWORKER_WORKER_NAME": "gpu-7", "GENWORKER_AMQP_URL": "amqp://u:p@h/"])
        XCTAssertEqual(c.worker.name, "gpu-7")
        XCTAssertEqual(c.amqp.url, "amqp://u:p@h/")
        XCTAssertEqual(WorkerConfiguration.environmentOverrides.map(\.key), ["amqp.url", "worker.name"])
        XCTAssertThrowsError(try WorkerConfiguration.load(path: nil, environment: ["GENWORKER_AMQP_URL": "http://nope/"])) { error in
            XCTAssertEqual((error as? GenWorkerError)?.code, .configuration)
        }
    }

    func testWarmMultiGPUJobsAreRefused() throws {
        var c = WorkerConfiguration()
        c.wan.warm = true
        XCTAssertNoThrow(try c.validate())
        c.wan.gpusPerJob = 2
        XCTAssertThrowsError(try c.validate()) { error in
            XCTAssertEqual((error as? GenWorkerError)?.code, .configuration)
            XCTAssertTrue("\(error)".contains("wan.warm: multi-GPU jobs"), "\(error)")
        }
    }

    func testEmptyAndCommentOnlyFilesAreTheDefaults() throws {
        XCTAssertEqual(try WorkerConfiguration.parse(yaml: ""), WorkerConfiguration())
        XCTAssertEqual(try WorkerConfiguration.parse(yaml: "# nothing\n"), WorkerConfiguration())
        XCTAssertEqual(try WorkerConfiguration.parse(yaml: "worker:\n"), WorkerConfiguration(), "an empty section keeps its defaults")
    }

    func testTheLedgerWindowMustHoldSeveralRenewals() {
        XCTAssertThrowsError(try WorkerConfiguration.parse(yaml: "topology:\n  ledger_retention_h: 0.05\njobs:\n  lease_s: 120").validate()) {
            error in
            XCTAssertTrue("\(error)".contains("must be at least 3 × jobs.lease_s"), "\(error)")
        }
        XCTAssertNoThrow(try WorkerConfiguration.parse(yaml: "topology:\n  ledger_retention_h: 0.1\njobs:\n  lease_s: 120").validate())
    }
}
