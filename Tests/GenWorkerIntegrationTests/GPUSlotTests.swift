import Foundation
import GenWorkerCore
import TestSupport
import XCTest

/// `worker.slots` × `wan.gpus_per_job` against the machine's GPUs, with a fake `nvidia-smi`
/// first on PATH (this machine has none): each slot's generator sees its own devices, and a
/// configuration that needs more than there are does not start.
final class GPUSlotTests: XCTestCase {
    var harness: WorkerHarness!
    var pid: pid_t = 0

    override func tearDown() {
        if pid > 0 {
            kill(pid, SIGKILL)
            _ = harness?.waitForExit(pid, timeout: 10)
        }
        harness?.tearDown()
    }

    /// A directory holding an `nvidia-smi` that lists `count` GPUs, first on PATH.
    func fakeNvidiaSMI(gpus count: Int) throws -> [String: String] {
        let dir = harness.root.appendingPathComponent("fake-bin")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let lines = (0..<count).map { "echo 'GPU \($0): NVIDIA A100-SXM4-80GB (UUID: GPU-fake-\($0))'" }.joined(separator: "\n")
        let script = dir.appendingPathComponent("nvidia-smi")
        try "#!/bin/sh\n[ \"$1\" = -L ] || exit 2\n\(lines)\n".write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        var environment = ["PATH": dir.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
        environment["CUDA_VISIBLE_DEVICES"] = nil
        return environment
    }

    /// `CUDA_VISIBLE_DEVICES` as the stand-in generator of `id` saw it.
    func visibleDevices(_ id: String) -> String? {
        guard let url = harness.standinFiles(id, suffix: ".argv.json").first, let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let env = object["env"] as? [String: String]
        else { return nil }
        return env["CUDA_VISIBLE_DEVICES"] ?? "unset"
    }

    func testTwoSlotsOnAThreeGPUMachineEachSeeTheirOwnDevice() throws {
        harness = try WorkerHarness { $0.worker.slots = 2 }
        guard ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"] == nil else {
            throw TestSupportError("CUDA_VISIBLE_DEVICES is set for the tests: the worker would use it instead of nvidia-smi")
        }
        pid = try harness.spawnWorkerProcess(name: "gpus", environment: try fakeNvidiaSMI(gpus: 3))
        try harness.submit(id: "slot-a", prompt: "a [[step_s=0.2]]", params: ["sample_steps": 15])
        try harness.submit(id: "slot-b", prompt: "b [[step_s=0.2]]", params: ["sample_steps": 15])
        _ = try harness.waitUntilRunning("slot-a")
        _ = try harness.waitUntilRunning("slot-b")
        XCTAssertEqual(Set([visibleDevices("slot-a"), visibleDevices("slot-b")]), ["0", "1"], "one device each, never the same")
        let log = try String(contentsOfFile: harness.root.appendingPathComponent("gpus.log").path, encoding: .utf8)
        XCTAssertTrue(log.contains("GPUs (nvidia-smi -L): 0,1,2; slots get 0 | 1"), log)
        XCTAssertEqual(try harness.result("slot-a", timeout: 30).status, .completed)
        XCTAssertEqual(try harness.result("slot-b", timeout: 30).status, .completed)
    }

    /// Before: slot N got device N whatever `wan.gpus_per_job` said: two 2-GPU jobs on a
    /// four-GPU box each saw one device. A fake torchrun runs the stand-in on one process and,
    /// as the real one, holds its rendezvous port while the job runs: 29500 unless `--standalone`.
    /// Before `--standalone`, the second job failed "Address already in use".
    func testTwoTwoGPUJobsOnAFourGPUMachineGetTwoDevicesEach() throws {
        harness = try WorkerHarness { $0.worker.slots = 2 }
        let torchrun = harness.root.appendingPathComponent("fake-torchrun")
        try """
        #!/usr/bin/env python3
        import socket, subprocess, sys
        args = sys.argv[1:]
        standalone = "--standalone" in args
        args = [a for a in args if a != "--standalone" and not a.startswith("--nproc_per_node")]
        rendezvous = socket.socket()
        try:
            rendezvous.bind(("127.0.0.1", 0 if standalone else 29500))
        except OSError as error:
            sys.exit(f"torch.distributed.DistNetworkError: failed to bind to 0.0.0.0:29500 ({error})")
        rendezvous.listen()
        sys.exit(subprocess.call([sys.executable] + args))
        """.write(to: torchrun, atomically: true, encoding: .utf8)
        chmod(torchrun.path, 0o755)
        pid = try harness.spawnWorkerProcess(
            name: "pairs", wanExtra: "  gpus_per_job: 2\n  torchrun: \(torchrun.path)", environment: try fakeNvidiaSMI(gpus: 4))
        try harness.submit(id: "pair-a", prompt: "a [[step_s=0.2]]", params: ["sample_steps": 15])
        try harness.submit(id: "pair-b", prompt: "b [[step_s=0.2]]", params: ["sample_steps": 15])
        _ = try harness.waitUntilRunning("pair-a")
        _ = try harness.waitUntilRunning("pair-b")
        XCTAssertEqual(Set([visibleDevices("pair-a"), visibleDevices("pair-b")]), ["0,1", "2,3"])
        XCTAssertEqual(try harness.result("pair-a", timeout: 30).status, .completed)
        XCTAssertEqual(try harness.result("pair-b", timeout: 30).status, .completed)
    }

    func testMoreGPUsThanTheMachineHasIsRefusedAtStartWithTheNumbers() throws {
        harness = try WorkerHarness { $0.worker.slots = 3 }
        pid = try harness.spawnWorkerProcess(name: "greedy", environment: try fakeNvidiaSMI(gpus: 2), waitUntilConsuming: false)
        let status = harness.waitForExit(pid, timeout: 20)
        pid = 0
        let log = try String(contentsOfFile: harness.root.appendingPathComponent("greedy.log").path, encoding: .utf8)
        XCTAssertNotNil(status, "still running: \(log)")
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(log.contains("worker.slots (3) × wan.gpus_per_job (1) needs 3 GPU(s); this machine has 2 (nvidia-smi -L: 0,1)"), log)
        XCTAssertFalse(log.contains("consuming"), "it took jobs")
    }
}
