import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// Bad input gets a clear `failed` result (when an id can be read), lands in the dead-letter
/// queue, and the worker goes on.
final class HostileJobTests: XCTestCase {
    var harness: WorkerHarness!

    override func setUpWithError() throws { harness = try WorkerHarness { $0.jobs.maxBodyBytes = 4096 } }
    override func tearDown() { harness?.tearDown() }

    func testEachBadJobFailsIsDeadLetteredAndTheNextJobRuns() throws {
        let outside = harness.root.appendingPathComponent("secret.png")
        try Data("x".utf8).write(to: outside)
        let link = harness.inputs.appendingPathComponent("escape.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: outside)
        let inside = harness.inputs.appendingPathComponent("ok.png")
        try Data("png".utf8).write(to: inside)

        try harness.startWorker()
        let bad: [(id: String, body: [UInt8], expect: String)] = [
            ("bad-json", Array("{\"id\": \"bad-json\", \"task\": ".utf8), "not valid JSON"),
            ("bad-task", WorkerHarness.jobBody(id: "bad-task", task: "x2v-9000"), "unknown task"),
            ("bad-size", WorkerHarness.jobBody(id: "bad-size", params: ["size": "1920*1080"]), "params.size"),
            ("bad-frames", WorkerHarness.jobBody(id: "bad-frames", params: ["frame_num": 80]), "4n+1"),
            ("bad-param", WorkerHarness.jobBody(id: "bad-param", params: ["audio": "/x.wav"]), "not accepted for t2v-A14B"),
            ("bad-path", WorkerHarness.jobBody(id: "bad-path", task: "i2v-A14B", params: ["image": "/etc/hostname"]), "outside the input roots"),
            ("bad-link", WorkerHarness.jobBody(id: "bad-link", task: "i2v-A14B", params: ["image": .string(link.path)]), "outside the input roots"),
            (
                "bad-dots",
                WorkerHarness.jobBody(id: "bad-dots", task: "i2v-A14B", params: ["image": .string(harness.inputs.path + "/../secret.png")]),
                "outside the input roots"
            ),
            ("bad-missing", WorkerHarness.jobBody(id: "bad-missing", task: "i2v-A14B"), "params.image is required"),
            ("bad-big", WorkerHarness.jobBody(id: "bad-big", prompt: String(repeating: "x", count: 5000)), "limit is 4096"),
            (
                "bad-type", Array("{\"id\":\"bad-type\",\"task\":\"t2v-A14B\",\"params\":{\"prompt\":\"p\",\"sample_steps\":true}}".utf8),
                "whole number"
            ),
            ("bad-timeout", WorkerHarness.jobBody(id: "bad-timeout", timeout: -5), "timeout_s"),
        ]
        for job in bad {
            // Straight to the queue, so even an unknown task reaches the worker; the message id names the job.
            try harness.submit(job.body, messageID: job.id, direct: true)
        }
        try harness.submit(Array("\u{0}\u{1}garbage".utf8), direct: true)  // no id anywhere: dead-lettered only
        for job in bad {
            let result = try harness.result(job.id)
            XCTAssertEqual(result.status, .failed, job.id)
            XCTAssertEqual(result.reason, .invalidJob, job.id)
            XCTAssertTrue(result.message?.contains(job.expect) ?? false, "\(job.id): \(result.message ?? "")")
        }
        let dead = try harness.peek(queue: harness.configuration.topology.deadQueue, expecting: bad.count + 1)
        XCTAssertEqual(dead.count, bad.count + 1)
        XCTAssertNil(harness.standinRecord("bad-path"))
        // The worker goes on: an image inside the roots is fine.
        try harness.submit(WorkerHarness.jobBody(id: "good-i2v", task: "i2v-A14B", params: ["image": .string(inside.path)]), task: "i2v-A14B")
        XCTAssertEqual(try harness.result("good-i2v").status, .completed)
    }

    func testJobForATaskNoQueueServesLandsInTheUnroutedQueue() throws {
        try harness.submit(WorkerHarness.jobBody(id: "nowhere"), task: "t9v-unknown")
        let unrouted = try harness.peek(queue: harness.configuration.topology.unroutedQueue, expecting: 1)
        XCTAssertEqual(unrouted.count, 1)
        XCTAssertEqual(unrouted.first?.routingKey, "t9v-unknown")
    }
}
