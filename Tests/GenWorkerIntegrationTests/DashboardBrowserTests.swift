import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// The dashboard against a real broker, a real worker and a real browser (headless Chromium
/// through Debian's chromium-driver, driven by Tests/browser/dashboard_browser.py): submit
/// through the form, the bar moves in a second tab, Cancel, `cancelled` in both tabs only
/// once the generator is gone. Also: auth, validation, bounded memory, and the rebuild from
/// the ledger after a restart.
final class DashboardBrowserTests: XCTestCase {
    var harness: WorkerHarness!
    var processes: [Process] = []

    override func setUpWithError() throws { harness = try WorkerHarness() }

    override func tearDown() {
        for process in processes where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        harness?.tearDown()
    }

    /// Starts `genworker dashboard` with users alice (admin) and bob; returns its base URL.
    func startDashboard(name: String = "dash") throws -> String {
        let alice = DashboardPassword.hash("alice-pw")
        let bob = DashboardPassword.hash("bob-pw")
        let config = try harness.writeConfigFile(
            name: name,
            extra: """
                dashboard:
                  port: 0
                  outputs_dir: \(harness.outputs.path)
                  users:
                    alice: "\(alice)"
                    bob: "\(bob)"
                  admins: [alice]
                """)
        let log = harness.root.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestBroker.genworkerExecutable)
        process.arguments = ["dashboard", "--config", config]
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        processes.append(process)
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("ledger caught up"), let range = text.range(of: "dashboard on http://127.0.0.1:") {
                return "http://127.0.0.1:\(text[range.upperBound...].prefix { $0.isNumber })"
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestSupportError("the dashboard did not start: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")
    }

    func curl(_ arguments: [String]) throws -> (code: Int, body: String) {
        let run = try TestBroker.runCapturing("/usr/bin/curl", ["-s", "-w", "\n%{http_code}"] + arguments)
        let lines = run.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func testSubmitWatchAndCancelInARealBrowser() throws {
        let worker = try harness.spawnWorkerProcess(name: "dash-worker")
        defer {
            kill(worker, SIGTERM)
            _ = harness.waitForExit(worker)
        }
        let base = try startDashboard()
        let shots = ProcessInfo.processInfo.environment["GENWORKER_SCREENSHOTS"] ?? harness.root.appendingPathComponent("shots").path
        let script = TestBroker.repositoryRoot.appendingPathComponent("Tests/browser/dashboard_browser.py").path
        let run = try TestBroker.runCapturing("/usr/bin/env", ["python3", script, base, "alice", "alice-pw", harness.outputs.path, shots])
        XCTAssertEqual(run.status, 0, run.output)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any], run.output)
        let job = try XCTUnwrap(report["job"] as? String)
        XCTAssertEqual(report["cancelled_seen_in"] as? [String], ["a", "b"])
        XCTAssertEqual(report["sigterm_recorded"] as? Bool, true)
        XCTAssertEqual(report["button_after"] as? String, "Generate")
        XCTAssertGreaterThanOrEqual((report["tab_b_bar_widths"] as? [String])?.count ?? 0, 3)
        let result = try harness.result(job)
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertEqual(result.reason, .cancelledWhileRunning)
        XCTAssertFalse(processIsAlive(harness.standinRecord(job)?.pid ?? 0))
        let workerLog = (try? String(contentsOf: harness.root.appendingPathComponent("dash-worker.log"), encoding: .utf8)) ?? ""
        XCTAssertTrue(workerLog.contains("'alice' through the dashboard"), "the worker's log names who cancelled: \(workerLog)")
        for page in ["submit", "jobs", "job", "workers", "queues"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(shots)/\(page).png"), "no screenshot of \(page)")
        }
    }

    func testAuthValidationAndARebuildFromTheLedger() throws {
        try harness.startWorker(name: "dash-w2")
        var base = try startDashboard()
        XCTAssertEqual(try curl(["\(base)/healthz"]).code, 200, "/healthz is open")
        let job = #"{"id":"dash-ok","task":"t2v-A14B","params":{"prompt":"fine","size":"832*480","sample_steps":5}}"#
        let noUser = try curl(["-X", "POST", "-H", "content-type: application/json", "-d", job, "\(base)/api/jobs"])
        XCTAssertEqual(noUser.code, 401, "submit needs a user")
        XCTAssertEqual(try curl(["-u", "alice:wrong", "-X", "POST", "-d", job, "\(base)/api/jobs"]).code, 401)
        let bad = try curl([
            "-u", "bob:bob-pw", "-X", "POST", "-d", #"{"id":"dash-bad","task":"t2v-A14B","params":{"prompt":"x","size":"1*1"}}"#, "\(base)/api/jobs",
        ])
        XCTAssertEqual(bad.code, 400)
        XCTAssertTrue(bad.body.contains("params.size"), "the worker's own validation message: \(bad.body)")
        XCTAssertEqual(try curl(["-u", "bob:bob-pw", "-X", "POST", "-d", job, "\(base)/api/jobs"]).code, 202)
        XCTAssertEqual(try curl(["-u", "bob:bob-pw", "-X", "POST", "-d", job, "\(base)/api/jobs"]).code, 202, "a double click")
        XCTAssertEqual(try harness.result("dash-ok").status, .completed)
        Thread.sleep(forTimeInterval: 1)
        XCTAssertThrowsError(try harness.result("dash-ok-probe", timeout: 1), "one result for two clicks (result() fails on a second)")
        // bob may cancel his own job, not somebody else's; alice (an admin) may cancel any.
        try harness.submit(id: "dash-foreign", prompt: "long [[step_s=0.2]]", params: ["sample_steps": 100])
        _ = try harness.waitUntilRunning("dash-foreign")
        XCTAssertEqual(try curl(["-u", "bob:bob-pw", "-X", "POST", "\(base)/api/jobs/dash-foreign/cancel"]).code, 403)
        XCTAssertEqual(try curl(["-u", "alice:alice-pw", "-X", "POST", "\(base)/api/jobs/dash-foreign/cancel"]).code, 202)
        XCTAssertEqual(try harness.result("dash-foreign").status, .cancelled)
        // Restarted, the dashboard knows everything again from the ledger.
        processes.last?.terminate()
        processes.last?.waitUntilExit()
        base = try startDashboard(name: "dash-again")
        let listed = try curl(["\(base)/api/jobs"]).body
        for id in ["dash-ok", "dash-foreign"] { XCTAssertTrue(listed.contains(#""id":"\#(id)""#), listed) }
        let page = try curl(["\(base)/jobs/dash-ok"]).body
        XCTAssertTrue(page.contains("completed") && page.contains("--sample_steps 5"), page)
        let workers = try curl(["\(base)/api/workers"]).body
        XCTAssertTrue(workers.contains(#""name":"dash-w2""#), workers)
        XCTAssertTrue(try curl(["\(base)/api/queues"]).body.contains(harness.configuration.topology.jobsQueue))
        XCTAssertEqual(try curl(["\(base)/jobs/never"]).code, 404)
        // The video seeks: one range gets 206 and its bytes, a range past the end 416.
        let video = try Data(contentsOf: harness.outputs.appendingPathComponent("dash-ok.mp4"))
        let part = try TestBroker.runCapturing("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", "-r", "10-109", "\(base)/outputs/dash-ok.mp4"])
            .output
        XCTAssertTrue(part.hasPrefix("HTTP/1.1 206"), part)
        XCTAssertTrue(part.lowercased().contains("content-range: bytes 10-109/\(video.count)"), part)
        let piecePath = harness.root.appendingPathComponent("piece.bin").path
        _ = try TestBroker.run("/usr/bin/curl", ["-s", "-r", "10-109", "-o", piecePath, "\(base)/outputs/dash-ok.mp4"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: piecePath)), video.subdata(in: 10..<110))
        XCTAssertEqual(try curl(["-o", "/dev/null", "-r", "\(video.count)-", "\(base)/outputs/dash-ok.mp4"]).code, 416)
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(base)/outputs/dash-ok.mp4"]).code, 200)
    }

    func testAWorkerServesTheDashboardWhenEnabled() throws {
        let pid = try harness.spawnWorkerProcess(name: "dash-inside", extraConfig: "dashboard:\n  enabled: true\n  port: 0")
        defer {
            kill(pid, SIGTERM)
            XCTAssertEqual(harness.waitForExit(pid), 0, "the worker and its dashboard stop together")
        }
        let log = harness.root.appendingPathComponent("dash-inside.log")
        var base = ""
        let deadline = Date().addingTimeInterval(20)
        while base.isEmpty, Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("ledger caught up"), let range = text.range(of: "dashboard on http://127.0.0.1:") {
                base = "http://127.0.0.1:\(text[range.upperBound...].prefix { $0.isNumber })"
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertFalse(base.isEmpty, "no dashboard in the worker's log")
        try harness.submit(id: "inside-1")
        XCTAssertEqual(try harness.result("inside-1").status, .completed)
        let workersDeadline = Date().addingTimeInterval(10)
        var workers = ""
        while !workers.contains(#""name":"dash-inside""#), Date() < workersDeadline {
            workers = try curl(["\(base)/api/workers"]).body
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTAssertTrue(workers.contains(#""name":"dash-inside""#), workers)
        var job = ""
        while !job.contains(#""status":"completed""#), Date() < workersDeadline {
            job = try curl(["\(base)/api/jobs/inside-1"]).body
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertTrue(job.contains(#""status":"completed""#), job)
    }
}
