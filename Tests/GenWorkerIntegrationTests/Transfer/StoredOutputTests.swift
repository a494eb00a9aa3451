import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import TestSupport
import Transfer
import XCTest

/// Whole jobs on the real broker with the real store: the video goes to SeaweedFS as a
/// step of the job and the result says where; an input by URL is fetched first; a bad input
/// fails before the generator starts; an upload that fails keeps the video; a cancel during
/// the upload stops it and leaves no object.
final class StoredOutputTests: XCTestCase {
    var world: TransferWorld!
    var harness: WorkerHarness!

    override func setUpWithError() throws {
        world = try TransferWorld()
        // The transfer step inherits these from the worker's environment, as in production.
        for (name, value) in TestS3.environment { setenv(name, value, 1) }
        harness = try WorkerHarness {
            $0.storage = self.world.configuration().storage
            $0.egress = self.world.configuration().egress
            $0.outputs.store = .s3
            $0.outputs.prefix = "tests/\(UUID().uuidString.prefix(8))/"
            $0.inputs.urls = true
            $0.inputs.s3Buckets = [TestS3.bucket]
        }
    }

    override func tearDown() {
        harness.tearDown()
        world.tearDown()
        for name in TestS3.environment.keys { unsetenv(name) }
    }

    func testAVideoIsStoredAndTheResultSaysWhereWithSizeAndHash() throws {
        try harness.startWorker()
        try harness.submit(id: "s3-ok")
        let result = try harness.result("s3-ok")
        XCTAssertEqual(result.event, .completed, result.message ?? "")
        let key = "\(harness.configuration.outputs.prefix)s3-ok/1.mp4"
        XCTAssertEqual(result.outputURI, "s3://\(TestS3.bucket)/\(key)")
        XCTAssertNil(result.output, "the local copy goes once stored (outputs.keep_local is off)")
        let back = world.root.appendingPathComponent("back.mp4").path
        XCTAssertEqual(try world.curl(try XCTUnwrap(result.outputURL), to: back), 200)
        XCTAssertEqual(try TransferWorld.sha256(back), result.outputSHA256)
        XCTAssertEqual(Int64(try Data(contentsOf: URL(fileURLWithPath: back)).count), result.outputBytes)
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.outputs.appendingPathComponent("s3-ok.mp4").path))
        assertMatchesSchema(try result.encoded(), "event.schema.json")
    }

    func testAnInputByURLIsFetchedBeforeTheGeneratorAndRemovedAfter() async throws {
        let image = try world.file("in.png", bytes: 20_000, png: true)
        let key = "tests/\(UUID().uuidString)/in.png"
        var put = TransferPlan(job: "seed", configuration: world.configuration())
        put.upload = .init(file: image, target: .store(key: key))
        _ = try await world.run(put)
        try harness.startWorker()
        try harness.submit(
            WorkerHarness.jobBody(id: "url-in", task: "i2v-A14B", params: ["image": .string(world.presigned("GET", key: key))]),
            task: "i2v-A14B")
        let result = try harness.result("url-in")
        XCTAssertEqual(result.event, .completed, "\(result.message ?? "") \(result.logTail ?? [])")
        let argv = try XCTUnwrap(harness.standinFiles("url-in", suffix: ".argv.json").first)
        let text = try String(contentsOf: argv, encoding: .utf8)
        XCTAssertTrue(text.contains("/inputs/image.png"), "the generator got the fetched copy: \(text)")
        XCTAssertFalse(text.contains("X-Amz"), "the generator never sees the URL")
        XCTAssertFalse(text.contains("AWS_SECRET_ACCESS_KEY"), "the generator never sees the store's credentials")
        // The run's folder keeps only the stand-in's own record (argv.json); the inputs are gone.
        let run = harness.outputs.appendingPathComponent(".runs/url-in.1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("inputs").path), "the fetched input stayed behind")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: run.appendingPathComponent("fetch.plan.json").path), "the plan (a presigned URL) stayed")
    }

    func testAMissingInputFailsAsInvalidInputBeforeAnyGenerator() throws {
        try harness.startWorker()
        try harness.submit(
            WorkerHarness.jobBody(id: "bad-in", task: "i2v-A14B", params: ["image": .string("s3://\(TestS3.bucket)/no/such/key.png")]),
            task: "i2v-A14B")
        let result = try harness.result("bad-in")
        XCTAssertEqual(result.event, .failed)
        XCTAssertEqual(result.reason, .invalidInput)
        XCTAssertTrue(result.message?.contains("params.image") ?? false, result.message ?? "")
        XCTAssertTrue(result.message?.contains("404") ?? false, result.message ?? "")
        XCTAssertTrue(harness.standinFiles("bad-in", suffix: ".argv.json").isEmpty, "the generator ran")
    }

    func testAnUploadThatFailsKeepsTheVideoAndSaysWhy() throws {
        try harness.startWorker { $0.storage.bucket = "no-such-bucket-\(UUID().uuidString.prefix(6).lowercased())" }
        try harness.submit(id: "up-fail")
        let result = try harness.result("up-fail")
        XCTAssertEqual(result.event, .failed)
        XCTAssertEqual(result.reason, .uploadFailed)
        XCTAssertTrue(result.message?.contains("NoSuchBucket") ?? false, result.message ?? "")
        let kept = try XCTUnwrap(result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: kept), "the video was not kept at \(kept)")
    }

    func testACancelDuringTheUploadStopsItAndLeavesNoObject() throws {
        // A 300-MiB video in 5-MiB parts: seconds of upload.
        try harness.startWorker {
            $0.storage.multipartThresholdMB = 5
            $0.storage.partSizeMB = 5
        }
        try harness.submit(id: "up-cancel", prompt: "a fox [[step_s=0.01]] [[video_mb=300]]")
        let deadline = Date().addingTimeInterval(30)
        while Self.transferRunning(for: "up-cancel") == false {
            guard Date() < deadline else { return XCTFail("the upload step never started") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 0.5)
        try harness.cancel("up-cancel")
        let result = try harness.result("up-cancel")
        XCTAssertEqual(result.event, .cancelled, result.message ?? "")
        XCTAssertEqual(result.step, "upload")
        XCTAssertFalse(Self.transferRunning(for: "up-cancel"))
        let key = "\(harness.configuration.outputs.prefix)up-cancel/1.mp4"
        XCTAssertEqual(try world.curl(world.presigned("GET", key: key)), 404, "a cancelled upload left an object")
    }

    func testThePythonExamplePresignsAPutSubmitsAndDownloadsTheVideo() throws {
        try harness.startWorker { $0.outputs.store = .local }  // the job's own URL wins over the store anyway
        let example = TestBroker.repositoryRoot.appendingPathComponent("examples/python/presigned_output.py").path
        let pikaURL = harness.configuration.amqp.url.hasSuffix("/") ? harness.configuration.amqp.url + "%2f" : harness.configuration.amqp.url
        let key = "tests/\(UUID().uuidString)/example.mp4"
        let log = world.root.appendingPathComponent("example.log").path
        let pid = try HTTPFixture.spawn(
            [
                "/usr/bin/env", "python3", example, "--url", pikaURL, "--prefix", harness.prefix, "--endpoint", TestS3.url,
                "--path-style", "--bucket", TestS3.bucket, "--key", key, "--id", "py-put", "--prompt", "a fox [[step_s=0.01]]",
            ], output: log, environment: TestS3.environment)
        let status = HTTPFixture.wait(pid)
        let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(status, 0, said)
        XCTAssertTrue(said.contains("matches the result"), said)
        XCTAssertTrue(said.contains("output_uri    \(TestS3.url)/\(TestS3.bucket)/\(key)"), said)
    }

    func testAnUploadThatRunsIntoTheJobsTimeoutKeepsTheVideo() throws {
        // A store that accepts connections and never answers: the job's timeout ends the upload.
        try harness.startWorker { $0.storage.endpoint = "http://127.0.0.1:\(self.world.fixture.stallPort)" }
        try harness.submit(id: "up-stall", timeout: 6)
        let result = try harness.result("up-stall", timeout: 40)
        XCTAssertEqual(result.event, .failed)
        XCTAssertEqual(result.reason, .timeout, result.message ?? "")
        XCTAssertEqual(result.step, "upload")
        let kept = try XCTUnwrap(result.output, "the video's path")
        XCTAssertTrue(FileManager.default.fileExists(atPath: kept), "the video was lost at \(kept)")
    }

    func testAJobsWebhookGetsStartedAndCompletedSignedThroughTheWorker() async throws {
        let secret = try XCTUnwrap(WebhookSecret(HTTPFixture.secret))
        let service = WebhookService(configuration: harness.configuration, secret: secret, logger: .init(label: "hooks"))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        try harness.startWorker(webhooks: service)
        let body = try ProtocolCoding.encode(
            JobMessage(
                id: "hooked", task: "t2v-A14B", params: ["prompt": "a fox [[step_s=0.01]]", "size": "832*480", "sample_steps": 5],
                webhook: Webhook(url: "\(world.fixture.base)/hook?fail=1", events: [.started, .completed])))
        try harness.submit(body)
        XCTAssertEqual(try harness.result("hooked").event, .completed)
        let deadline = Date().addingTimeInterval(20)
        while world.fixture.requests().filter({ $0["status"] as? Int == 204 }).count < 2 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let taken = world.fixture.requests().filter { $0["status"] as? Int == 204 }
        let events = taken.compactMap { request -> String? in
            guard let body = Data(base64Encoded: request["body"] as? String ?? "") else { return nil }
            return try? JobEvent.decode(Array(body)).event.rawValue
        }
        XCTAssertEqual(Set(events), ["started", "completed"], "\(world.fixture.requests())")
        XCTAssertTrue(taken.allSatisfy { $0["verified"] as? Bool == true }, "the receiver's own HMAC check failed: \(taken)")
    }

    /// Whether a `genworker transfer` process of this job's upload runs (its plan is in the
    /// run's folder), of one attempt or of any.
    static func transferRunning(for id: String, attempt: Int? = nil) -> Bool {
        let folder = attempt.map { "/.runs/\(id).\($0)/" } ?? "/.runs/\(id)."
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.contains { pid in
            guard pid.allSatisfy(\.isNumber), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let words = String(decoding: data, as: UTF8.self).split(separator: "\0")
            return words.contains("transfer") && words.contains { $0.contains(folder) && $0.hasSuffix("upload.plan.json") }
        }
    }
}
