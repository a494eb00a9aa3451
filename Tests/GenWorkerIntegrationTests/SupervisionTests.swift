import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// A finished or cancelled job leaves nothing running, whatever the generator does, and
/// whatever happens to the worker.
final class SupervisionTests: XCTestCase {
    var harness: WorkerHarness!

    override func setUpWithError() throws { harness = try WorkerHarness() }
    override func tearDown() { harness?.tearDown() }

    func testGrandchildInItsOwnSessionIgnoringSIGTERMIsGoneAfterTheCancel() throws {
        try harness.startWorker(name: "tree")
        let marker = harness.ownerMarker("tree")
        try harness.submit(id: "tree", prompt: "spawner [[grandchild]] [[step_s=0.5]]", params: ["sample_steps": 40])
        let pid = try harness.waitUntilRunning("tree")
        let deadline = Date().addingTimeInterval(5)
        while ProcessTree.processes(withEnvironment: marker).count < 2, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        let tree = ProcessTree.processes(withEnvironment: marker)
        XCTAssertGreaterThanOrEqual(tree.count, 2, "the grandchild did not start")
        let grandchild = try XCTUnwrap(tree.first { $0 != pid })
        XCTAssertNotEqual(getsid(grandchild), getsid(pid), "the grandchild should be in a session of its own")
        try harness.cancel("tree")
        XCTAssertEqual(try harness.result("tree").reason, .cancelledWhileRunning)
        XCTAssertFalse(processIsAlive(pid))
        XCTAssertFalse(processIsAlive(grandchild), "the grandchild survived the cancel")
        XCTAssertEqual(ProcessTree.processes(withEnvironment: marker), [])
    }

    func testAJobThatCompletesLeavesNoStrayBehind() throws {
        try harness.startWorker(name: "stray")
        try harness.submit(id: "stray", prompt: "leaves a daemon [[grandchild]] [[step_s=0.01]]")
        XCTAssertEqual(try harness.result("stray").status, .completed)
        XCTAssertEqual(ProcessTree.processes(withEnvironment: harness.ownerMarker("stray")), [])
    }

    func testAHundredMegabyteLogFloodCompletesWithBoundedMemory() throws {
        try harness.startWorker(name: "flood")
        let before = residentBytes()
        try harness.submit(id: "flood", prompt: "noisy [[flood_mb=100]] [[step_s=0.01]]")
        let result = try harness.result("flood", timeout: 120)
        let growth = residentBytes() - before
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.logTail?.count, 50)
        XCTAssertLessThan(growth, 40 << 20, "the worker's memory grew by \(growth >> 20) MiB reading 100 MiB of logs")
    }

    func testProgressEventsArriveInOrderAndMatchTheBars() throws {
        let watch = try harness.channel.declareQueue(harness.prefix + ".progress", durable: false).name
        defer { _ = try? harness.channel.deleteQueue(watch) }
        try harness.channel.bindQueue(watch, exchange: harness.configuration.topology.eventsExchange, routingKey: "prog.*")
        try harness.startWorker(name: "prog") { $0.progress.intervalMilliseconds = 200 }
        try harness.submit(id: "prog", prompt: "steady [[step_s=0.1]]", params: ["sample_steps": 20])
        XCTAssertEqual(try harness.result("prog").status, .completed)
        let events = try harness.peek(queue: watch, expecting: 100, timeout: 2).map { try JobEvent.decode($0.body) }
        XCTAssertEqual(events.first?.event, .started)
        XCTAssertEqual(events.last?.event, .completed)
        let progress = events.compactMap(\.progress)
        XCTAssertGreaterThanOrEqual(progress.count, 5, "\(progress)")
        XCTAssertLessThanOrEqual(progress.count, 20, "progress is rate-limited")
        let bars = progress.filter { $0.total > 0 }
        XCTAssertEqual(Set(bars.map(\.total)), [20])
        XCTAssertEqual(bars.map(\.step), bars.map(\.step).sorted(), "steps out of order")
        for bar in bars { XCTAssertEqual(bar.percent, 100 * bar.step / 20) }
        XCTAssertEqual(progress.first?.phase, "loading")
        XCTAssertTrue(progress.contains { $0.phase == "saving" })
        for event in events { assertMatchesSchema(try event.encoded(), "event.schema.json") }
    }

    func testTwoSlotsRunTwoJobsAtOnceWithDistinctDevices() throws {
        try harness.startWorker(name: "slots") { $0.worker.slots = 2 }
        try harness.submit(id: "slot-a", prompt: "a [[step_s=0.1]]", params: ["sample_steps": 20])
        try harness.submit(id: "slot-b", prompt: "b [[step_s=0.1]]", params: ["sample_steps": 20])
        let a = try harness.waitUntilRunning("slot-a", timeout: 5)
        let b = try harness.waitUntilRunning("slot-b", timeout: 5)
        XCTAssertTrue(processIsAlive(a) && processIsAlive(b), "the two jobs should run at the same time")
        let devices = [harness.standinEnvironment("slot-a")?["CUDA_VISIBLE_DEVICES"], harness.standinEnvironment("slot-b")?["CUDA_VISIBLE_DEVICES"]]
        XCTAssertEqual(Set(devices.compactMap { $0 }), ["0", "1"])
        try harness.cancel("slot-b")
        XCTAssertEqual(try harness.result("slot-b").reason, .cancelledWhileRunning)
        XCTAssertEqual(try harness.result("slot-a").status, .completed, "the cancel must reach only its own slot")
    }

    func testTheChildEnvironmentHoldsNoAMQPURLOrPassword() throws {
        setenv("GENWORKER_AMQP_URL", TestBroker.url, 1)
        defer { unsetenv("GENWORKER_AMQP_URL") }
        try harness.startWorker(name: "env")
        try harness.submit(id: "env")
        XCTAssertEqual(try harness.result("env").status, .completed)
        let env = try XCTUnwrap(harness.standinEnvironment("env"))
        XCTAssertNil(env["GENWORKER_AMQP_URL"])
        let password = try AMQPConfiguration(url: TestBroker.url).password
        for (key, value) in env {
            XCTAssertFalse(value.contains("amqp://"), "\(key) holds an AMQP URL")
            XCTAssertFalse(value.contains(":\(password)@"), "\(key) holds the password")
        }
        XCTAssertNotNil(env["PATH"])
        XCTAssertNotNil(env["GENWORKER_RUN"])
    }

    func testATwoStepJobCancelledInItsFirstStepNeverStartsTheSecond() throws {
        let (video, refer) = try animateInputs(video: "slow-dance.mp4")
        try harness.startWorker(name: "steps")
        try harness.submit(
            try ProtocolCoding.encode(
                JobMessage(
                    id: "steps", task: "animate-14B",
                    params: ["video_path": .string(video.path), "refer_path": .string(refer.path)])),
            task: "animate-14B")
        let pidFile = harness.outputs.appendingPathComponent(".runs/steps.1/work/preprocess.pid").path
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: pidFile), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: pidFile), "the preprocessing step did not start")
        try harness.cancel("steps")
        let result = try harness.result("steps")
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertEqual(result.step, "preprocess")
        XCTAssertNil(harness.standinRecord("steps"), "generate.py started after a cancel in the first step")
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.outputs.appendingPathComponent(".runs/steps.1/work").path))
    }

    func testAnimateFromRawInputsRunsBothSteps() throws {
        let (video, refer) = try animateInputs(video: "dance.mp4")
        try harness.startWorker(name: "animate")
        try harness.submit(
            try ProtocolCoding.encode(
                JobMessage(
                    id: "anim", task: "animate-14B",
                    params: [
                        "video_path": .string(video.path), "refer_path": .string(refer.path), "replace_flag": true, "sample_steps": 4,
                    ])), task: "animate-14B")
        let result = try harness.result("anim")
        XCTAssertEqual(result.status, .completed, result.message ?? "")
        XCTAssertEqual(result.step, "generate")
        let argv = try XCTUnwrap(harness.standinRecord("anim")).argv
        XCTAssertTrue(argv.contains("--src_root_path"))
        XCTAssertTrue(argv.contains("--replace_flag"))
        XCTAssertEqual(argv.drop { $0 != "--refert_num" }.dropFirst().first, "1")
    }

    func testSIGKILLedWorkerLeavesNoProcessAndTheJobCompletesOnAnotherWorker() throws {
        let pid = try harness.spawnWorkerProcess(name: "doomed")
        try harness.submit(id: "orphan", prompt: "long [[grandchild]] [[step_s=0.2]]", params: ["sample_steps": 40])
        let generator = try harness.waitUntilRunning("orphan")
        let marker = harness.ownerMarker("doomed")
        XCTAssertGreaterThanOrEqual(ProcessTree.processes(withEnvironment: marker).count, 1)
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        _ = harness.waitForExit(pid)
        let gone = harness.waitUntilGone(marker, timeout: 5)
        XCTAssertNotNil(gone, "processes of the killed worker's job survived: \(ProcessTree.processes(withEnvironment: marker))")
        if let gone { print("job tree gone \(Int(gone * 1000)) ms after SIGKILL of the worker") }
        XCTAssertLessThan(gone ?? 99, 1.5)
        XCTAssertFalse(processIsAlive(generator))
        harness.forgetStandinRecord("orphan")
        try harness.startWorker(name: "rescuer")
        let result = try harness.result("orphan", timeout: 60)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "rescuer")
        XCTAssertEqual(result.redelivered, true)
    }

    func testSIGTERMWithDrainFinishesTheRunningJobAndExitsZero() throws {
        let pid = try harness.spawnWorkerProcess(name: "drainer", extraArguments: ["--shutdown", "drain"])
        try harness.submit(id: "drained", prompt: "finish me [[step_s=0.1]]", params: ["sample_steps": 20])
        _ = try harness.waitUntilRunning("drained")
        XCTAssertEqual(kill(pid, SIGTERM), 0)
        let status = try XCTUnwrap(harness.waitForExit(pid, timeout: 30), "the worker did not exit after SIGTERM")
        XCTAssertEqual(status, 0, "exit status \(status)")
        let result = try harness.result("drained")
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "drainer")
    }

    func testSIGTERMWithRequeueGivesTheJobBackAndExitsZero() throws {
        let pid = try harness.spawnWorkerProcess(name: "quitter", extraArguments: ["--shutdown", "requeue"])
        try harness.submit(id: "requeued", prompt: "give me back [[step_s=0.2]]", params: ["sample_steps": 40])
        let generator = try harness.waitUntilRunning("requeued")
        XCTAssertEqual(kill(pid, SIGTERM), 0)
        let status = try XCTUnwrap(harness.waitForExit(pid, timeout: 30), "the worker did not exit after SIGTERM")
        XCTAssertEqual(status, 0)
        XCTAssertFalse(processIsAlive(generator))
        XCTAssertThrowsError(try harness.result("requeued", timeout: 1), "requeue must publish no result")
        try harness.startWorker(name: "next")
        let result = try harness.result("requeued", timeout: 60)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "next")
        XCTAssertEqual(result.redelivered, true)
    }
}

extension SupervisionTests {
    /// A raw video and reference image under the input roots, for animate's preprocessing
    /// step (the stand-in preprocesses slowly when the video's name contains "slow").
    func animateInputs(video name: String) throws -> (video: URL, refer: URL) {
        let video = harness.inputs.appendingPathComponent(name)
        let refer = harness.inputs.appendingPathComponent("ref.png")
        try Data("v".utf8).write(to: video)
        try Data("p".utf8).write(to: refer)
        return (video, refer)
    }

    func testARestartedWorkerKillsWhatItsPreviousLifeLeftBehind() throws {
        let pid = try harness.spawnWorkerProcess(name: "phoenix")
        try harness.submit(id: "leftover", prompt: "long [[step_s=0.5]]", params: ["sample_steps": 10])
        let generator = try harness.waitUntilRunning("leftover")
        // Kill the worker and its watchdog together, as an OOM killer of the whole group might not:
        // the generator is left behind, re-parented to init.
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        let watchdogs = all.filter { candidate in
            guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8) else { return false }
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            return stat.contains("(genworker-watch") && fields.count > 1 && pid_t(fields[1]) == pid
        }
        XCTAssertEqual(watchdogs.count, 1, "the worker should have one watchdog")
        for p in watchdogs { kill(p, SIGKILL) }
        kill(pid, SIGKILL)
        _ = harness.waitForExit(pid)
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertTrue(processIsAlive(generator), "without its watchdog the generator should have outlived the worker")
        try harness.startWorker(name: "phoenix")
        // The new life kills the old generator before it takes any job (which then runs anew).
        XCTAssertFalse(processIsAlive(generator), "the restarted worker left its previous life's generator running")
        XCTAssertEqual(try harness.result("leftover", timeout: 60).status, .completed)
    }
}
