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
        defer { unlink(healthy) }
        harness = try WorkerHarness {
            $0.worker.quarantineAfter = 2
            $0.worker.probeEverySeconds = 1
            $0.worker.probeCommand = ["/bin/sh", "-c", "test -e \(healthy)"]
        }
        pid = try harness.spawnWorkerProcess(name: "broken-gpu")
        try harness.submit(id: "bad-1", prompt: "x [[fail=cuda_error]]", params: ["sample_steps": 4])
        XCTAssertEqual(try harness.result("bad-1", timeout: 30).reason, .gpuError)
        try harness.submit(id: "bad-2", prompt: "x [[fail=cuda_error]]", params: ["sample_steps": 4])
        XCTAssertEqual(try harness.result("bad-2", timeout: 30).reason, .gpuError)
        try harness.submit(id: "waits", params: ["sample_steps": 4])
        Thread.sleep(forTimeInterval: 4)
        XCTAssertNil(harness.standinRecord("waits"), "a quarantined worker took a job")
        let log = try String(contentsOfFile: harness.root.appendingPathComponent("broken-gpu.log").path, encoding: .utf8)
        XCTAssertTrue(log.contains("2 jobs in a row failed for this machine's sake (the last: gpu_error): quarantined"), log)
        XCTAssertTrue(log.contains("the quarantine probe failed"), log)
        let ledger = try LedgerReader.read(connection: harness.client, configuration: harness.configuration)
        XCTAssertEqual(ledger.workers["broken-gpu"]?.quarantined, true, "the fleet sees it (genworker workers)")
        FileManager.default.createFile(atPath: healthy, contents: Data())
        let after = try? harness.result("waits", timeout: 30)
        XCTAssertEqual(
            after?.status, .completed,
            "the probe passed: it takes jobs again\n"
                + ((try? String(contentsOfFile: harness.root.appendingPathComponent("broken-gpu.log").path, encoding: .utf8)) ?? ""))
    }
}
