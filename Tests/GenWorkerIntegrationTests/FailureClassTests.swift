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
        harness = try WorkerHarness { $0.worker.quarantineAfter = 0 }
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
