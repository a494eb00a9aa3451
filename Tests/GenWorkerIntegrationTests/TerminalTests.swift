import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// `genworker submit --wait` as a person sees it, in a real terminal (tmux): a live progress
/// bar, and Ctrl-C asking whether to cancel the job.
final class TerminalTests: XCTestCase {
    func tmux(_ arguments: [String]) throws -> String { try TestBroker.run("/usr/bin/env", ["tmux"] + arguments) }

    func testSubmitWaitShowsProgressAndCtrlCOffersToCancel() throws {
        let harness = try WorkerHarness()
        defer { harness.tearDown() }
        try harness.startWorker(name: "tty") { $0.progress.intervalMilliseconds = 100 }
        let config = try harness.writeConfigFile(name: "tty-client")
        let executable = TestBroker.genworkerExecutable
        let session = "gw-\(UUID().uuidString.prefix(6))"
        let command =
            "\(executable) submit --config \(config) --task t2v-A14B --id tty-job --param 'prompt=slow [[step_s=0.3]]' --param sample_steps=40 --wait; echo EXIT=$?; sleep 60"
        try tmux(["new-session", "-d", "-s", session, "-x", "160", "-y", "20", command])
        defer { _ = try? tmux(["kill-session", "-t", session]) }

        func screen() -> String { (try? tmux(["capture-pane", "-p", "-t", session])) ?? "" }
        func waitFor(_ text: String, timeout: TimeInterval = 15) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if screen().contains(text) { return true }
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }
        XCTAssertTrue(waitFor("/40 "), "no progress bar: \(screen())")
        XCTAssertTrue(waitFor("█"), "the bar does not fill: \(screen())")
        try tmux(["send-keys", "-t", session, "C-c"])
        XCTAssertTrue(waitFor("cancel job tty-job? [y/N]"), screen())
        try tmux(["send-keys", "-t", session, "y", "Enter"])
        XCTAssertTrue(waitFor("cancelled (cancelled_while_running)"), screen())
        XCTAssertTrue(waitFor("EXIT=1"), screen())
        XCTAssertEqual(try harness.result("tty-job").reason, .cancelledWhileRunning)
    }
}
