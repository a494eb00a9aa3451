import Foundation
import GenWorkerCore
import Supervision
import XCTest

final class WanCommandTests: XCTestCase {
    func job(_ task: WanTask, _ parameters: [JobParameter] = []) -> JobRequest {
        JobRequest(id: "j", task: task, parameters: parameters, timeout: .seconds(60))
    }

    func testSingleGPUCommandFollowsTheReadme() {
        var c = WorkerConfiguration()
        c.wan.python = "/venv/bin/python"
        c.wan.repo = "/opt/Wan2.2"
        c.wan.checkpoints = "/models"
        let spec = WanCommand.processSpec(for: job(.ti2v5B, [JobParameter("prompt", .text("p"))]), configuration: c, outputPath: "/out/j.mp4")
        XCTAssertEqual(spec.executable, "/venv/bin/python")
        XCTAssertEqual(
            spec.arguments,
            [
                "/opt/Wan2.2/generate.py", "--task", "ti2v-5B", "--ckpt_dir", "/models/Wan2.2-TI2V-5B",
                "--save_file", "/out/j.mp4", "--offload_model", "True", "--convert_model_dtype", "--t5_cpu",
                "--prompt", "p",
            ])
        XCTAssertEqual(spec.workingDirectory, "/opt/Wan2.2")
    }

    func testMultiGPUUsesTorchrunWithFSDPAndUlysses() {
        var c = WorkerConfiguration()
        c.wan.gpusPerJob = 4
        let spec = WanCommand.processSpec(for: job(.t2vA14B), configuration: c, outputPath: "/o.mp4")
        XCTAssertEqual(spec.executable, "torchrun")
        // --standalone: two multi-GPU slots on one host must not both bind torchrun's default port 29500.
        XCTAssertEqual(Array(spec.arguments.prefix(2)), ["--standalone", "--nproc_per_node=4"])
        XCTAssertTrue(spec.arguments.contains("--dit_fsdp"))
        XCTAssertTrue(spec.arguments.contains("--t5_fsdp"))
        XCTAssertEqual(spec.arguments.drop { $0 != "--ulysses_size" }.dropFirst().first, "4")
        XCTAssertFalse(spec.arguments.contains("--offload_model"))
    }

    func testChildEnvironmentHoldsNoSecrets() {
        var c = WorkerConfiguration()
        c.env.pass = ["HF_HOME", "GENWORKER_AMQP_URL"]
        c.env.set = ["OMP_NUM_THREADS": "4"]
        let parent = [
            "PATH": "/bin", "HOME": "/root", "GENWORKER_AMQP_URL": "amqp://u:pw@h/", "HF_HOME": "/hf",
            "CUDA_HOME": "/cuda", "AWS_SECRET_ACCESS_KEY": "k",
        ]
        let env = WanCommand.childEnvironment(configuration: c, devices: "1", from: parent)
        XCTAssertEqual(env["HF_HOME"], "/hf")
        XCTAssertEqual(env["CUDA_HOME"], "/cuda")
        XCTAssertEqual(env["CUDA_VISIBLE_DEVICES"], "1")
        XCTAssertEqual(env["OMP_NUM_THREADS"], "4")
        XCTAssertNil(env["GENWORKER_AMQP_URL"])
        XCTAssertNil(env["AWS_SECRET_ACCESS_KEY"])
        XCTAssertFalse(env.values.contains { $0.contains("pw@") })
    }
}
