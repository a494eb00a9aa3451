import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// The worker against the real broker, with the stand-in generator as a real child process.
final class WorkerTests: XCTestCase {
    var harness: WorkerHarness!

    override func setUpWithError() throws { harness = try WorkerHarness() }
    override func tearDown() { harness?.tearDown() }

    func testJobCompletesWithOneFullResultAndAStartedEvent() throws {
        let watch = try harness.channel.declareQueue(harness.prefix + ".watch", durable: false).name
        defer { _ = try? harness.channel.deleteQueue(watch) }
        try harness.channel.bindQueue(watch, exchange: harness.configuration.topology.eventsExchange, routingKey: "job-ok.*")
        try harness.startWorker()
        try harness.submit(id: "job-ok")
        let result = try harness.result("job-ok")
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.event, .completed)
        XCTAssertEqual(result.task, "t2v-A14B")
        XCTAssertEqual(result.exitCode, 0)
        XCTAssertEqual(result.worker, "w1")
        XCTAssertEqual(result.redelivered, false)
        XCTAssertNil(result.reason)
        let output = try XCTUnwrap(result.output)
        XCTAssertEqual(output, harness.outputs.appendingPathComponent("job-ok.mp4").path)
        XCTAssertGreaterThan((try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0, 0)
        XCTAssertNotNil(result.startedAt)
        XCTAssertNotNil(result.endedAt)
        XCTAssertGreaterThan(result.elapsedSeconds ?? 0, 0)
        XCTAssertTrue(result.logTail?.contains { $0.contains("Saving generated video to") } ?? false, "\(result.logTail ?? [])")
        // The events exchange saw started, then completed.
        let deliveries = try harness.peek(queue: watch, expecting: 100, timeout: 1.5)
        let kinds = try deliveries.map { try JobEvent.decode($0.body).event }
        XCTAssertEqual(kinds.first, .started)
        XCTAssertEqual(kinds.last, .completed)
        XCTAssertEqual(Set(kinds.dropFirst().dropLast()).subtracting([.progress]), [])
        // The worker is true to the published schemas.
        for delivery in deliveries { assertMatchesSchema(delivery.body, "event.schema.json") }
        assertMatchesSchema(WorkerHarness.jobBody(id: "job-ok"), "job.schema.json")
        // generate.py got the README's command line for t2v.
        let argv = try XCTUnwrap(harness.standinRecord("job-ok")).argv
        // It writes in the attempt's own directory; the video took the job's name once its end counted.
        let runOutput = harness.outputs.appendingPathComponent(".runs/job-ok.1/job-ok.mp4").path
        for expected in ["--task", "t2v-A14B", "--offload_model", "True", "--convert_model_dtype", "--save_file", runOutput] {
            XCTAssertTrue(argv.contains(expected), "\(expected) missing from \(argv)")
        }
        XCTAssertTrue(argv.contains(harness.configuration.wan.checkpoints + "/Wan2.2-T2V-A14B"))
    }

    func testPromptWithShellMetacharactersArrivesVerbatim() throws {
        try harness.startWorker()
        let prompt = "\"; rm -rf ~ $(reboot) `id` | & > /tmp/x 'quoted' \\ ünïcødé [[step_s=0.01]]"
        try harness.submit(id: "meta", prompt: prompt)
        XCTAssertEqual(try harness.result("meta").status, .completed)
        let argv = try XCTUnwrap(harness.standinRecord("meta")).argv
        let index = try XCTUnwrap(argv.firstIndex(of: "--prompt"))
        XCTAssertEqual(argv[index + 1], prompt)
    }

    func testCancelWhileRunningStopsTheChildAtOnce() throws {
        try harness.startWorker()
        try harness.submit(id: "long", prompt: "slow [[step_s=0.5]]", params: ["sample_steps": 40])
        let pid = try harness.waitUntilRunning("long")
        let sent = Date()
        try harness.cancel("long")
        let result = try harness.result("long")
        XCTAssertLessThan(Date().timeIntervalSince(sent), 2)
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertEqual(result.reason, .cancelledWhileRunning)
        XCTAssertEqual(result.signal, SIGTERM)
        XCTAssertFalse(processIsAlive(pid), "the generator survived its cancel")
        XCTAssertNil(result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.outputs.appendingPathComponent("long.mp4").path))
    }

    func testCancelOfAChildThatIgnoresSIGTERMKillsItAfterTheGrace() throws {
        try harness.startWorker()
        try harness.submit(id: "stubborn", prompt: "stubborn [[ignore_sigterm]] [[step_s=0.5]]", params: ["sample_steps": 40])
        let pid = try harness.waitUntilRunning("stubborn")
        Thread.sleep(forTimeInterval: 0.2)  // let python install its SIGTERM handler
        let sent = Date()
        try harness.cancel("stubborn")
        let result = try harness.result("stubborn")
        let took = Date().timeIntervalSince(sent)
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertEqual(result.reason, .cancelledWhileRunning)
        XCTAssertEqual(result.signal, SIGKILL)
        XCTAssertGreaterThanOrEqual(took, 0.9, "SIGKILL came before the 1 s grace")
        XCTAssertLessThan(took, 4)
        XCTAssertFalse(processIsAlive(pid))
    }

    func testCancelWhileQueuedNeverStartsTheJob() throws {
        try harness.startWorker()
        try harness.submit(id: "blocker", prompt: "busy [[step_s=0.2]]", params: ["sample_steps": 40])
        _ = try harness.waitUntilRunning("blocker")
        try harness.submit(id: "queued")
        try harness.cancel("queued")
        Thread.sleep(forTimeInterval: 0.2)
        try harness.cancel("blocker")
        XCTAssertEqual(try harness.result("blocker").reason, .cancelledWhileRunning)
        let queued = try harness.result("queued")
        XCTAssertEqual(queued.status, .cancelled)
        XCTAssertEqual(queued.reason, .cancelledBeforeStart)
        XCTAssertNil(harness.standinRecord("queued"), "a cancelled queued job was started")
    }

    func testCancelSentBeforeAnyWorkerStartedIsHonoured() throws {
        // No worker runs: the job waits in the queue, the cancel goes to the fanout (and its stream).
        try harness.submit(id: "early")
        try harness.cancel("early")
        try harness.startWorker()
        let result = try harness.result("early")
        XCTAssertEqual(result.status, .cancelled)
        XCTAssertEqual(result.reason, .cancelledBeforeStart)
        XCTAssertNil(harness.standinRecord("early"))
        // And the next job runs normally.
        try harness.submit(id: "after-early")
        XCTAssertEqual(try harness.result("after-early").status, .completed)
    }

    func testCancelOfUnknownOrFinishedJobChangesNothing() throws {
        try harness.startWorker()
        try harness.submit(id: "done-1")
        XCTAssertEqual(try harness.result("done-1").status, .completed)
        try harness.cancel("done-1")
        try harness.cancel("never-existed")
        try harness.submit(id: "done-2")
        XCTAssertEqual(try harness.result("done-2").status, .completed)
    }

    func testTimeoutFailsTheJob() throws {
        try harness.startWorker()
        try harness.submit(id: "slowpoke", prompt: "slow [[step_s=0.5]]", params: ["sample_steps": 40], timeout: 1)
        let pid = try harness.waitUntilRunning("slowpoke")
        let result = try harness.result("slowpoke")
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.reason, .timeout)
        XCTAssertFalse(processIsAlive(pid))
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.outputs.appendingPathComponent("slowpoke.mp4").path))
    }

    func testExitZeroWithoutVideoIsNoOutput() throws {
        try harness.startWorker()
        try harness.submit(id: "empty", prompt: "nothing [[no_output]] [[step_s=0.01]]")
        let result = try harness.result("empty")
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.reason, .noOutput)
        XCTAssertEqual(result.exitCode, 0)
    }

    func testNonZeroExitAndDeathBySignalFail() throws {
        try harness.startWorker()
        try harness.submit(id: "exit3", prompt: "bad [[exit=3]] [[step_s=0.01]]")
        try harness.submit(id: "segv", prompt: "crash [[signal=11]] [[step_s=0.01]]")
        let exit3 = try harness.result("exit3")
        XCTAssertEqual(exit3.reason, .exitCode)
        XCTAssertEqual(exit3.exitCode, 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.outputs.appendingPathComponent("exit3.mp4").path))
        let segv = try harness.result("segv")
        XCTAssertEqual(segv.reason, .signal)
        XCTAssertEqual(segv.signal, 11)
        XCTAssertTrue(segv.message?.contains("Segmentation") ?? false, segv.message ?? "")
        assertMatchesSchema(try segv.encoded(), "event.schema.json")
    }

    func testReplyToGetsTheResultWithTheCorrelationID() throws {
        let replies = try harness.channel.declareQueue(harness.prefix + ".replies", durable: false).name
        defer { _ = try? harness.channel.deleteQueue(replies) }
        try harness.startWorker()
        try harness.submit(WorkerHarness.jobBody(id: "rpc"), replyTo: replies, correlationID: "corr-42")
        let delivery = try XCTUnwrap(try harness.peek(queue: replies, expecting: 1).first)
        XCTAssertEqual(delivery.properties.correlationID, "corr-42")
        XCTAssertEqual(try JobEvent.decode(delivery.body).status, .completed)
    }

    func testTwoWorkersShareTheQueueAndACancelReachesWhicheverRunsTheJob() throws {
        try harness.startWorker(name: "alpha")
        try harness.startWorker(name: "beta")
        for i in 0..<4 { try harness.submit(id: "pair-\(i)", prompt: "p [[step_s=0.05]]", params: ["sample_steps": 10]) }
        try harness.submit(id: "pair-long-a", prompt: "long [[step_s=0.5]]", params: ["sample_steps": 40])
        try harness.submit(id: "pair-long-b", prompt: "long [[step_s=0.5]]", params: ["sample_steps": 40])
        var workers = Set<String>()
        for i in 0..<4 {
            let result = try harness.result("pair-\(i)")
            XCTAssertEqual(result.status, .completed)
            workers.insert(result.worker)
        }
        XCTAssertEqual(workers, ["alpha", "beta"], "both workers should have taken jobs")
        _ = try harness.waitUntilRunning("pair-long-a")
        _ = try harness.waitUntilRunning("pair-long-b")
        try harness.cancel("pair-long-a")
        try harness.cancel("pair-long-b")
        let a = try harness.result("pair-long-a")
        let b = try harness.result("pair-long-b")
        XCTAssertEqual([a.reason, b.reason], [.cancelledWhileRunning, .cancelledWhileRunning])
        XCTAssertNotEqual(a.worker, b.worker, "each worker should have run one long job")
    }
}
