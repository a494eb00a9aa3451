import Foundation
import TestSupport
import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// The slot's warm runner driven directly (no broker): runner/warm_runner.py with the stand-in.
final class WarmRunnerTests: XCTestCase {
    func testDifferentConstructorFlagsBuildANewPipeline() throws {
        let outputs = FileManager.default.temporaryDirectory.appendingPathComponent("warm-\(UUID())")
        try FileManager.default.createDirectory(at: outputs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outputs) }
        let root = TestBroker.repositoryRoot
        let runner = WarmRunner(
            options: .init(
                python: "python3", script: root.appendingPathComponent("runner/warm_runner.py").path,
                repo: root.appendingPathComponent("examples/standin").path, idleSeconds: 30, maxJobs: 100, maxResidentBytes: 0,
                environment: [
                    "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": "/tmp", "GENWORKER_STANDIN_BUILD_S": "0.3",
                    "PYTHONUNBUFFERED": "1",
                ]))
        defer { runner.shutdown() }
        let options = SupervisorOptions(grace: .seconds(2), pollInterval: .milliseconds(100), logTailLines: 5)
        func run(_ id: String, _ extra: [String] = []) -> WarmRun {
            runner.run(
                id: id,
                arguments: [
                    "--task", "t2v-A14B", "--ckpt_dir", "/tmp/ckpt", "--save_file", outputs.appendingPathComponent("\(id).mp4").path,
                    "--prompt", "p [[step_s=0.01]]", "--size", "832*480", "--sample_steps", "3",
                ] + extra,
                supervisor: options, control: JobControl(), deadline: nil, onLine: { _ in })
        }
        let first = run("a")
        XCTAssertEqual(first.run.termination, .exited(0), first.run.logTail.joined(separator: "\n"))
        XCTAssertEqual(first.pipelineReused, false)
        XCTAssertTrue(first.runnerStarted)
        XCTAssertEqual(run("b").pipelineReused, true)
        let flags = run("c", ["--t5_cpu"])
        XCTAssertEqual(flags.pipelineReused, false, "other constructor flags (t5_cpu) must build another pipeline")
        XCTAssertGreaterThanOrEqual(flags.pipelineBuildSeconds ?? 0, 0.3)
        XCTAssertFalse(flags.runnerStarted, "the same runner")
        XCTAssertEqual(run("d", ["--t5_cpu"]).pipelineReused, true)
        XCTAssertEqual(runner.restarts, 0)
    }
}
