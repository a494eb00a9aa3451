import Foundation
import GenWorker
import GenWorkerCore
import TestSupport
import XCTest

/// Wan2.2's failures, as the stand-in prints them, reach the result as reasons a client and an
/// operator can act on; failures that blame the machine quarantine the worker until its probe
/// passes. Real broker, real `genworker run` processes.
final class FailureClassTests: XCTestCase {
    var harness: WorkerHarness!
    var pid: pid_t = 0

    override func tearDown() {
        if pid > 0 {
            kill(pid, SIGKILL)
            _ = harness?.waitForExit(pid, timeout: 10)
        }
        harness?.tearDown()
    }

    func testEachKindOfFailureReachesTheResultAsItsReason() throws {
        harness = try WorkerHarness {
            $0.worker.quarantineAfter = 0
            $0.worker.probeEverySeconds = 1  // the hold-off after giving a job back
        }
        pid = try harness.spawnWorkerProcess(name: "classifier")
        let cases: [(String, String, JobReason)] = [
            ("oom", "[[fail=gpu_oom]]", .gpuOutOfMemory), ("cuda", "[[fail=cuda_error]]", .gpuError),
            ("flash", "[[fail=flash_attn]]", .environment), ("module", "[[fail=module]]", .environment),
            ("killed", "[[signal=9]]", .hostOutOfMemory), ("plain", "[[exit=3]]", .exitCode),
        ]
        for (id, directive, _) in cases { try harness.submit(id: id, prompt: "x \(directive)", params: ["sample_steps": 4]) }
        for (id, _, reason) in cases {
            let result = try harness.result(id, timeout: 60)
            XCTAssertEqual(result.status, .failed, id)
            XCTAssertEqual(result.reason, reason, "\(id): \(result.message ?? "")")
        }
        XCTAssertTrue(try harness.result("oom").message?.contains("offload_model: true") ?? false)
        // A machine's fault went back once (jobs.machine_fault_retries: 1) and, failing again
        // here, ended failed; a job's own failure never went back.
        let ledger = try LedgerReader.read(connection: harness.client, configuration: harness.configuration)
        XCTAssertEqual(ledger.jobs["cuda"]?.machineFaults, 1)
        XCTAssertEqual(ledger.jobs["cuda"]?.attempts.count, 2)
        XCTAssertEqual(ledger.jobs["module"]?.attempts.count, 2)
        XCTAssertEqual(ledger.jobs["oom"]?.attempts.count, 1)
        XCTAssertEqual(ledger.jobs["plain"]?.attempts.count, 1)
    }

    /// A box whose GPU is broken fails every job in a second. Before, each of them ended
    /// failed (a "black hole" worker drains the queue into failures, quarantine_after jobs at
    /// least); now they go back and a healthy worker completes them all.
    func testJobsABrokenMachineFailedAreGivenBackAndCompleteOnAHealthyOne() throws {
        harness = try WorkerHarness {
            $0.worker.quarantineAfter = 2
            $0.worker.probeEverySeconds = 1
            $0.worker.probeCommand = ["/bin/false"]
        }
        let broken = try harness.spawnWorkerProcess(name: "broken", extraConfig: Self.brokenGPU)
        defer {
            kill(broken, SIGKILL)
            _ = harness.waitForExit(broken)
        }
        let ids = ["h-1", "h-2", "h-3"]
        for id in ids { try harness.submit(id: id, params: ["sample_steps": 4]) }
        let brokenLog = harness.root.appendingPathComponent("broken.log").path
        let deadline = Date().addingTimeInterval(30)
        while !((try? String(contentsOfFile: brokenLog, encoding: .utf8)) ?? "").contains("quarantined, taking no jobs"), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let log = try String(contentsOfFile: brokenLog, encoding: .utf8)
        XCTAssertTrue(log.contains("giving it back for another worker (1 of jobs.machine_fault_retries 1)"), log)
        XCTAssertTrue(log.contains("quarantined, taking no jobs"), log)
        pid = try harness.spawnWorkerProcess(name: "healthy")
        for id in ids {
            let result = try harness.result(id, timeout: 60)
            XCTAssertEqual(result.status, .completed, "\(id): \(result.message ?? "")")
            XCTAssertEqual(result.worker, "healthy", id)
        }
        let ledger = try LedgerReader.read(connection: harness.client, configuration: harness.configuration)
        XCTAssertEqual(ids.map { ledger.jobs[$0]?.machineFaults ?? 0 }.reduce(0, +), 2, "the two the broken box ran went back")
        XCTAssertEqual(ledger.workers["broken"]?.quarantined, true)
    }

    static let brokenGPU = "env:\n  set:\n    GENWORKER_STANDIN_FAIL: cuda_error\n"

    /// The one job a broken box gave back, while the healthy worker's only slot is busy: before
    /// the hold-off, the broken box (the only consumer) took it straight back, failed it again,
    /// and that second fault ended it. Now it waits for the healthy worker (adversarial review).
    func testAJobABrokenMachineGaveBackWaitsForAnotherWorkerInsteadOfFailingThereAgain() throws {
        harness = try WorkerHarness {
            $0.worker.quarantineAfter = 3
            $0.worker.probeEverySeconds = 6
            $0.worker.probeCommand = ["/bin/false"]
        }
        pid = try harness.spawnWorkerProcess(name: "healthy")
        try harness.submit(id: "busy", prompt: "slow [[step_s=0.25]]", params: ["sample_steps": 10])
        _ = try harness.waitUntilRunning("busy")
        let broken = try harness.spawnWorkerProcess(name: "broken", extraConfig: Self.brokenGPU)
        defer {
            kill(broken, SIGKILL)
            _ = harness.waitForExit(broken)
        }
        try harness.submit(id: "given-back", params: ["sample_steps": 4])
        let result = try harness.result("given-back", timeout: 60)
        XCTAssertEqual(result.status, .completed, result.message ?? "")
        XCTAssertEqual(result.worker, "healthy")
        XCTAssertEqual(try harness.result("busy", timeout: 30).status, .completed)
        let ledger = try LedgerReader.read(connection: harness.client, configuration: harness.configuration)
        XCTAssertEqual(ledger.jobs["given-back"]?.machineFaults, 1, "it did fail on the broken box first")
        XCTAssertEqual(ledger.jobs["given-back"]?.attempts.map(\.worker), ["broken", "healthy"])
    }

    func testMachineFaultsInARowQuarantineTheWorkerUntilItsProbePasses() throws {
        let healthy = FileManager.default.temporaryDirectory.appendingPathComponent("gw-probe-\(UUID().uuidString)").path
        let probes = healthy + ".probes"
        defer {
            unlink(healthy)
            unlink(probes)
        }
        harness = try WorkerHarness {
            $0.worker.quarantineAfter = 2
            $0.jobs.machineFaultRetries = 0  // each fault ends its job: this test counts them
            $0.worker.probeEverySeconds = 3
            $0.worker.gpus = ["3"]
            // Each probe notes the devices it was shown.
            $0.worker.probeCommand = ["/bin/sh", "-c", "echo \"${CUDA_VISIBLE_DEVICES-unset}\" >> \(probes); test -e \(healthy)"]
        }
        pid = try harness.spawnWorkerProcess(name: "broken-gpu")
        let port = try XCTUnwrap(harness.metricsPort(of: "broken-gpu"))
        XCTAssertEqual(harness.http(port, "/readyz").0, 200)
        try harness.submit(id: "bad-1", prompt: "x [[fail=cuda_error]]", params: ["sample_steps": 4])
        XCTAssertEqual(try harness.result("bad-1", timeout: 30).reason, .gpuError)
        try harness.submit(id: "bad-2", prompt: "x [[fail=cuda_error]]", params: ["sample_steps": 4])
        XCTAssertEqual(try harness.result("bad-2", timeout: 30).reason, .gpuError)
        try harness.submit(id: "waits", params: ["sample_steps": 4])
        // /readyz says so (before, it answered 200 "ready" all through the quarantine).
        let ready = harness.http(port, "/readyz")
        XCTAssertEqual(ready.0, 503)
        XCTAssertTrue(ready.1.contains("quarantined"), ready.1)
        // The first probe waits a period: a probe at once would pass on a fault seconds old.
        Thread.sleep(forTimeInterval: 1.5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: probes), "probed at once")
        Thread.sleep(forTimeInterval: 3.5)
        XCTAssertNil(harness.standinRecord("waits"), "a quarantined worker took a job")
        let log = try String(contentsOfFile: harness.root.appendingPathComponent("broken-gpu.log").path, encoding: .utf8)
        XCTAssertTrue(log.contains("2 jobs in a row failed for this machine's sake (the last: gpu_error, slot 0): quarantined"), log)
        XCTAssertTrue(log.contains("the quarantine probe failed"), log)
        XCTAssertEqual(try String(contentsOfFile: probes, encoding: .utf8).split(separator: "\n").first, "3", "the probe sees the slots' GPUs")
        let ledger = try LedgerReader.read(connection: harness.client, configuration: harness.configuration)
        XCTAssertEqual(ledger.workers["broken-gpu"]?.quarantined, true, "the fleet sees it (genworker workers)")
        FileManager.default.createFile(atPath: healthy, contents: Data())
        let after = try? harness.result("waits", timeout: 30)
        XCTAssertEqual(
            after?.status, .completed,
            "the probe passed: it takes jobs again\n"
                + ((try? String(contentsOfFile: harness.root.appendingPathComponent("broken-gpu.log").path, encoding: .utf8)) ?? ""))
        XCTAssertEqual(harness.http(port, "/readyz").0, 200)
    }
}
