import Foundation
import TestSupport
import XCTest

/// The Prometheus alert rules are valid and fire when they should (promtool from Debian's
/// prometheus package, installed by scripts/install-deps.sh). That every metric they and the
/// Grafana dashboard name is exported is checked against a real worker in ObservabilityTests.
final class AlertRulesTests: XCTestCase {
    func testRulesAreValidAndFireAsTheirUnitTestsSay() throws {
        let directory = TestBroker.repositoryRoot.appendingPathComponent("config/prometheus").path
        let check = try TestBroker.runCapturing("/usr/bin/promtool", ["check", "rules", "\(directory)/genworker-alerts.yml"])
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("SUCCESS: 11 rules found"), check.output)
        let test = try TestBroker.runCapturing("/usr/bin/promtool", ["test", "rules", "\(directory)/genworker-alerts.test.yml"])
        XCTAssertEqual(test.status, 0, test.output)
        XCTAssertTrue(test.output.contains("SUCCESS"), test.output)
    }

    func testTheGrafanaDashboardIsAPanelPerQuestion() throws {
        let data = try Data(contentsOf: TestBroker.repositoryRoot.appendingPathComponent("docs/grafana/genworker.json"))
        let dashboard = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try XCTUnwrap(dashboard["panels"] as? [[String: Any]])
        let titles = panels.compactMap { $0["title"] as? String }
        for needed in [
            "Jobs by status", "Failed and cancelled jobs by reason", "Run time", "Queue wait", "Cancel latency", "Slots busy",
            "Broker connected", "Queue depth", "Demand", "Workers online and quarantined", "Stalest running job",
        ] {
            XCTAssertTrue(titles.contains { $0.hasPrefix(needed) }, "no panel for \(needed)")
        }
        XCTAssertEqual(Set(panels.compactMap { $0["id"] as? Int }).count, panels.count, "panel ids are unique")
    }
}
