import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// `wan.warm`: the stand-in's pipelines (examples/standin/wan) take 1 s to build, and each
/// build is recorded; the runner is runner/warm_runner.py, running the stand-in's own
/// `_parse_args()` and `generate(args)`.
final class WarmGeneratorTests: XCTestCase {
    var harness: WorkerHarness!
    var builds: URL { harness.root.appendingPathComponent("builds.txt") }
    var ledger: URL { harness.root.appendingPathComponent("ledger.txt") }

    override func setUpWithError() throws { harness = try WorkerHarness() }
    override func tearDown() { harness?.tearDown() }

    func startWarmWorker(_ configure: (inout WorkerConfiguration) -> Void = { _ in }) throws {
        let builds = self.builds.path
        let ledger = self.ledger.path
        try harness.startWorker(name: "warm") {
            $0.wan.warm = true
            $0.wan.warmRunner = TestBroker.repositoryRoot.appendingPathComponent("runner/warm_runner.py").path
            $0.env.set = ["GENWORKER_STANDIN_BUILD_S": "1", "GENWORKER_STANDIN_BUILDS": builds, "GENWORKER_STANDIN_LEDGER": ledger]
            configure(&$0)
        }
    }

    var buildCount: Int { ((try? String(contentsOf: builds, encoding: .utf8)) ?? "").split(separator: "\n").count }

    func run(_ id: String, task: String = "t2v-A14B", prompt: String = "quick [[step_s=0.01]]") throws -> JobEvent {
        let size: JSONValue = task == "ti2v-5B" ? "1280*704" : "832*480"
        try harness.submit(WorkerHarness.jobBody(id: id, task: task, prompt: prompt, params: ["size": size, "sample_steps": 5]), task: task)
        return try harness.result(id)
    }

    func testTenJobsInARowBuildThePipelineOnce() throws {
        try startWarmWorker()
        var pids = Set<Int32>()
        for i in 0..<10 {
            let result = try run("ten-\(i)")
            XCTAssertEqual(result.status, .completed, result.message ?? "")
            XCTAssertEqual(result.warm, true)
            let build = try XCTUnwrap(result.pipelineBuildSeconds)
            if i == 0 { XCTAssertGreaterThanOrEqual(build, 1.0) } else { XCTAssertEqual(build, 0, "job \(i) built again") }
            pids.insert(try XCTUnwrap(harness.standinRecord("ten-\(i)")).pid)
            XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(result.output)))
        }
        XCTAssertEqual(buildCount, 1)
        XCTAssertEqual(pids.count, 1, "one runner ran all ten")
    }

    func testAnotherPipelineIsBuiltAfterTheOldOneIsDropped() throws {
        try startWarmWorker()
        XCTAssertGreaterThan(try run("p-t2v").pipelineBuildSeconds ?? 0, 0)
        XCTAssertGreaterThan(try run("p-ti2v", task: "ti2v-5B").pipelineBuildSeconds ?? 0, 0, "a different pipeline is built")
        XCTAssertGreaterThan(try run("p-t2v-again").pipelineBuildSeconds ?? 0, 0, "one pipeline is kept at a time")
        XCTAssertEqual(try run("p-t2v-reused").pipelineBuildSeconds, 0)
        XCTAssertEqual(buildCount, 3)
    }

    func testACancelStopsTheStepLoopAndTheRunnerStaysWarm() throws {
        try startWarmWorker()
        XCTAssertEqual(try run("c-warmup").status, .completed)
        let runner = try XCTUnwrap(harness.standinRecord("c-warmup")).pid
        try harness.submit(WorkerHarness.jobBody(id: "c-long", prompt: "long [[step_s=0.2]]", params: ["sample_steps": 100]))
        XCTAssertEqual(try harness.waitUntilRunning("c-long"), runner)
        Thread.sleep(forTimeInterval: 0.5)
        let sent = Date()
        try harness.cancel("c-long")
        let result = try harness.result("c-long")
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertEqual(result.reason, .cancelledWhileRunning)
        XCTAssertLessThan(Date().timeIntervalSince(sent), 2)
        // The stand-in's generate(args) had ended (its `finally` wrote "end") before the result.
        let lines = try String(contentsOf: ledger, encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("end c-long ") }, "the step loop was still running: \(lines)")
        XCTAssertTrue(processIsAlive(runner), "the runner died with the cancel")
        let next = try run("c-next")
        XCTAssertEqual(next.pipelineBuildSeconds, 0, "the next job had to build again")
        XCTAssertEqual(harness.standinRecord("c-next")?.pid, runner)
    }

    func testARunnerThatIgnoresTheStopIsKilledAndReplaced() throws {
        try startWarmWorker()
        try harness.submit(WorkerHarness.jobBody(id: "s-stuck", prompt: "stuck [[ignore_stop]] [[step_s=0.2]]", params: ["sample_steps": 100]))
        let runner = try harness.waitUntilRunning("s-stuck")
        Thread.sleep(forTimeInterval: 1.5)  // past the build, into the blocked sampling
        try harness.cancel("s-stuck")
        let result = try harness.result("s-stuck")
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertTrue(result.message?.contains("killed after") ?? false, result.message ?? "")
        XCTAssertFalse(processIsAlive(runner), "the stuck runner outlived its cancel")
        let next = try run("s-next")
        XCTAssertEqual(next.status, .completed)
        XCTAssertGreaterThan(next.pipelineBuildSeconds ?? 0, 0, "a new runner builds again")
        XCTAssertNotEqual(harness.standinRecord("s-next")?.pid, runner)
    }

    func testARunnerCrashFailsItsJobAndTheNextJobRuns() throws {
        try startWarmWorker()
        let crashed = try run("x-crash", prompt: "boom [[signal=11]] [[step_s=0.01]]")
        XCTAssertEqual(crashed.status, .failed)
        XCTAssertEqual(crashed.reason, .signal)
        XCTAssertEqual(crashed.signal, 11)
        let failed = try run("x-exit", prompt: "bad [[exit=3]] [[step_s=0.01]]")
        XCTAssertEqual(failed.reason, .exitCode)
        XCTAssertEqual(failed.exitCode, 3)
        let next = try run("x-next")
        XCTAssertEqual(next.status, .completed)
        XCTAssertEqual(next.pipelineBuildSeconds, 0, "an exit code is the job's, not the runner's: it stays warm")
    }

    /// A CUDA error leaves the runner's CUDA context unusable: before, the runner was kept
    /// and every later job of its slot failed until `warm_max_jobs` (adversarial review).
    func testARunnerWhoseJobHitACUDAErrorIsReplaced() throws {
        try startWarmWorker { $0.jobs.machineFaultRetries = 0 }
        let warmup = try run("g-warmup")
        XCTAssertEqual(warmup.status, .completed)
        let runner = try XCTUnwrap(harness.standinRecord("g-warmup")).pid
        let broken = try run("g-cuda", prompt: "x [[fail=cuda_error]] [[step_s=0.01]]")
        XCTAssertEqual(broken.reason, .gpuError)
        let next = try run("g-next", prompt: "x [[step_s=0.01]]")
        XCTAssertEqual(next.status, .completed)
        XCTAssertNotEqual(harness.standinRecord("g-next")?.pid, runner, "the poisoned runner ran the next job")
        XCTAssertGreaterThan(next.pipelineBuildSeconds ?? 0, 0, "a new runner builds its pipeline")
        // An out-of-memory inside PyTorch's allocator leaves the context usable: the runner stays.
        let kept = try XCTUnwrap(harness.standinRecord("g-next")).pid
        XCTAssertEqual(try run("g-oom", prompt: "x [[fail=gpu_oom]] [[step_s=0.01]]").reason, .gpuOutOfMemory)
        XCTAssertEqual(try run("g-after").status, .completed)
        XCTAssertEqual(harness.standinRecord("g-after")?.pid, kept)
    }

    func testMetricsCountBuildsReusesAndRestarts() throws {
        let runnerPath = TestBroker.repositoryRoot.appendingPathComponent("runner/warm_runner.py").path
        let pid = try harness.spawnWorkerProcess(
            name: "warm-metrics",
            extraConfig: """
                env:
                  set: {GENWORKER_STANDIN_BUILD_S: "0.5"}
                """, wanExtra: "  warm: true\n  warm_runner: \(runnerPath)\n")
        defer {
            kill(pid, SIGTERM)
            _ = harness.waitForExit(pid)
        }
        let port = try XCTUnwrap(harness.metricsPort(of: "warm-metrics"))
        XCTAssertEqual(try run("mx-1").pipelineBuildSeconds.map { $0 > 0 }, true)
        XCTAssertEqual(try run("mx-2").pipelineBuildSeconds, 0)
        XCTAssertEqual(try run("mx-crash", prompt: "boom [[signal=11]] [[step_s=0.01]]").reason, .signal)
        XCTAssertEqual(try run("mx-3").status, .completed)
        let metrics = harness.http(port, "/metrics").1
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        XCTAssertEqual(value("genworker_pipeline_builds_total"), 2, metrics)  // mx-1, and mx-3 in a new runner
        XCTAssertEqual(value("genworker_pipeline_reuses_total"), 1, metrics)  // mx-2 (mx-crash died before its runner could report)
        XCTAssertEqual(value("genworker_runner_restarts_total"), 1, metrics)  // after the crash
    }

    func testARunnerAboveItsMemoryBoundIsReplacedAfterItsJob() throws {
        try startWarmWorker { $0.wan.warmMaxRSSMB = 1 }  // any Python is above 1 MiB
        XCTAssertEqual(try run("m-1").status, .completed)
        let first = try XCTUnwrap(harness.standinRecord("m-1")).pid
        XCTAssertFalse(processIsAlive(first), "the runner above wan.warm_max_rss_mb was kept")
        XCTAssertGreaterThan(try run("m-2").pipelineBuildSeconds ?? 0, 0)
    }

    func testRecyclingAfterMaxJobsAndIdleExit() throws {
        try startWarmWorker {
            $0.wan.warmMaxJobs = 2
            $0.wan.warmIdleSeconds = 1.5
        }
        XCTAssertGreaterThan(try run("r-1").pipelineBuildSeconds ?? 0, 0)
        XCTAssertEqual(try run("r-2").pipelineBuildSeconds, 0)
        let first = try XCTUnwrap(harness.standinRecord("r-2")).pid
        XCTAssertFalse(processIsAlive(first), "recycled after warm_max_jobs")
        XCTAssertGreaterThan(try run("r-3").pipelineBuildSeconds ?? 0, 0)
        let second = try XCTUnwrap(harness.standinRecord("r-3")).pid
        XCTAssertNotEqual(first, second)
        Thread.sleep(forTimeInterval: 3)
        XCTAssertFalse(processIsAlive(second), "an idle runner must exit after warm_idle_s")
        XCTAssertGreaterThan(try run("r-4").pipelineBuildSeconds ?? 0, 0)
    }
}
