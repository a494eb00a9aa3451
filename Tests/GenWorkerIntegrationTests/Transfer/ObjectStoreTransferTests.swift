import Foundation
import GenWorkerCore
import TestSupport
import Transfer
import XCTest

/// `genworker transfer`'s work against the real SeaweedFS: uploads with the worker's
/// credentials (one PUT, and multipart above the threshold), a job's own presigned PUT,
/// inputs by presigned GET and by `s3://`, and the store's faults.
final class ObjectStoreTransferTests: XCTestCase {
    var world: TransferWorld!

    override func setUpWithError() throws { world = try TransferWorld() }
    override func tearDown() { world.tearDown() }

    func testAVideoGoesToTheStoreInOnePutWithTheWorkersCredentials() async throws {
        let file = try world.file("video.mp4", bytes: 1 << 20)
        var plan = TransferPlan(job: "up1", configuration: world.configuration())
        let key = "tests/\(UUID().uuidString)/1.mp4"
        plan.upload = .init(file: file, target: .store(key: key))
        let report = try await world.run(plan)
        let stored = try XCTUnwrap(report.stored)
        XCTAssertEqual(stored.uri, "s3://\(TestS3.bucket)/\(key)")
        XCTAssertEqual(stored.bytes, 1 << 20)
        XCTAssertEqual(stored.sha256, try TransferWorld.sha256(file))
        // The presigned GET of the result works for a client without credentials, and gives the same bytes.
        let back = world.root.appendingPathComponent("back.mp4").path
        XCTAssertEqual(try world.curl(try XCTUnwrap(stored.url), to: back), 200)
        XCTAssertEqual(try TransferWorld.sha256(back), stored.sha256)
    }

    func testAVideoAboveTheThresholdGoesUpInPartsAndArrivesWhole() async throws {
        let file = try world.file("big.mp4", bytes: 12 << 20)
        let configuration = world.configuration {
            $0.storage.multipartThresholdMB = 5
            $0.storage.partSizeMB = 5
        }
        var plan = TransferPlan(job: "up2", configuration: configuration)
        let key = "tests/\(UUID().uuidString)/1.mp4"
        plan.upload = .init(file: file, target: .store(key: key))
        let report = try await world.run(plan)
        let stored = try XCTUnwrap(report.stored)
        XCTAssertEqual(stored.bytes, 12 << 20)
        let back = world.root.appendingPathComponent("back.mp4").path
        XCTAssertEqual(try world.curl(try XCTUnwrap(stored.url), to: back), 200)
        XCTAssertEqual(try TransferWorld.sha256(back), try TransferWorld.sha256(file))
        // A multipart object's ETag ends in "-<parts>": three parts (5 + 5 + 2 MiB).
        let head = try TestBroker.run("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", try XCTUnwrap(stored.url)])
        XCTAssertTrue(head.lowercased().contains("-3\""), head)
    }

    func testAJobsOwnPresignedPutNeedsNoCredentials() async throws {
        let file = try world.file("video.mp4", bytes: 300_000)
        let key = "tests/\(UUID().uuidString)/client.mp4"
        var plan = TransferPlan(job: "up3", configuration: world.configuration { $0.storage = .init() })
        plan.upload = .init(file: file, target: .url(OutputDestination(putURL: world.presigned("PUT", key: key))))
        // No credentials in the environment at all: the URL is the only authority.
        let report = try await world.run(plan, env: [:])
        let stored = try XCTUnwrap(report.stored)
        XCTAssertEqual(stored.uri, "\(TestS3.url)/\(TestS3.bucket)/\(key)", "the URL without its query (the signature)")
        XCTAssertNil(stored.url)
        let back = world.root.appendingPathComponent("back.mp4").path
        XCTAssertEqual(try world.curl(world.presigned("GET", key: key), to: back), 200)
        XCTAssertEqual(try TransferWorld.sha256(back), try TransferWorld.sha256(file))
    }

    func testInputsArriveByPresignedGetAndByS3URI() async throws {
        let image = try world.file("in.png", bytes: 50_000, png: true)
        let key = "tests/\(UUID().uuidString)/in.png"
        var put = TransferPlan(job: "in0", configuration: world.configuration())
        put.upload = .init(file: image, target: .store(key: key))
        _ = try await world.run(put)

        var plan = TransferPlan(job: "in1", configuration: world.configuration())
        let viaURL = world.root.appendingPathComponent("a.png").path
        let viaS3 = world.root.appendingPathComponent("b.png").path
        plan.fetches = [
            .init(param: "image", source: .url(world.presigned("GET", key: key)), media: .image, destination: viaURL),
            .init(param: "refer_path", source: .s3(bucket: TestS3.bucket, key: key), media: .image, destination: viaS3),
        ]
        let report = try await world.run(plan)
        XCTAssertEqual(report.fetched, ["image": 50_000, "refer_path": 50_000])
        XCTAssertEqual(try TransferWorld.sha256(viaURL), try TransferWorld.sha256(image))
        XCTAssertEqual(try TransferWorld.sha256(viaS3), try TransferWorld.sha256(image))
    }

    func testWrongCredentialsAMissingBucketAndAnOutageFailNamingTheStoreAndStatus() async throws {
        let file = try world.file("video.mp4", bytes: 10_000)
        func upload(_ configure: (inout WorkerConfiguration) -> Void, env: [String: String] = TestS3.environment) async -> TransferError? {
            var plan = TransferPlan(job: "f", configuration: world.configuration(configure))
            plan.upload = .init(file: file, target: .store(key: "tests/faults.mp4"))
            do {
                _ = try await world.run(plan, env: env)
                return nil
            } catch { return error }
        }
        var wrong = TestS3.environment
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let refused = await upload({ _ in }, env: wrong)
        XCTAssertEqual(refused?.code, .status(403), refused?.message ?? "uploaded with a wrong secret")
        XCTAssertTrue(refused?.message.contains(TestS3.url) ?? false, refused?.message ?? "")
        XCTAssertFalse(refused?.message.contains("not-the-secret") ?? true, "a secret in a message")

        let missing = await upload { $0.storage.bucket = "no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())" }
        XCTAssertEqual(missing?.code, .notFound, missing?.message ?? "uploaded into a missing bucket")
        XCTAssertTrue(missing?.message.contains("NoSuchBucket") ?? false, missing?.message ?? "")

        let started = ContinuousClock.now
        let outage = await upload {
            $0.storage.endpoint = "http://127.0.0.1:9"  // discard: nothing listens
            $0.storage.attempts = 3
        }
        XCTAssertEqual(outage?.code, .connection, outage?.message ?? "uploaded to nothing")
        XCTAssertGreaterThan(ContinuousClock.now - started, .milliseconds(1200), "three tries with backoff (0.5 s, 1 s)")

        let none = await upload({ _ in }, env: [:])
        XCTAssertEqual(none?.code, .credentials, none?.message ?? "uploaded without credentials")
    }

    func testACancelDuringAMultipartUploadLeavesNoObject() throws {
        // 400 MiB in 5-MiB parts takes seconds on loopback; SIGTERM comes well before the end.
        let file = world.root.appendingPathComponent("huge.mp4").path
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: nil))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: file))
        try handle.truncate(atOffset: 400 << 20)
        try handle.close()
        let key = "tests/\(UUID().uuidString)/cancelled.mp4"
        var plan = TransferPlan(
            job: "c1",
            configuration: world.configuration {
                $0.storage.multipartThresholdMB = 5
                $0.storage.partSizeMB = 5
            })
        plan.upload = .init(file: file, target: .store(key: key))
        let planPath = world.root.appendingPathComponent("plan.json").path
        FileManager.default.createFile(atPath: planPath, contents: try JSONEncoder().encode(plan))
        let log = world.root.appendingPathComponent("transfer.log")
        let child = try HTTPFixture.spawn(
            [TestBroker.genworkerExecutable, "transfer", "--plan", planPath, "--report", world.root.appendingPathComponent("report.json").path],
            output: log.path, environment: TestS3.environment)
        let deadline = Date().addingTimeInterval(30)
        while !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("multipart upload started") && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        Thread.sleep(forTimeInterval: 0.3)  // some parts are in
        XCTAssertEqual(waitpid(child, nil, WNOHANG), 0, "the upload ended before the cancel; the test needs a bigger file")
        kill(child, SIGTERM)
        let status = HTTPFixture.wait(child)
        let said = try String(contentsOf: log, encoding: .utf8)
        XCTAssertEqual(status >> 8 & 0xff, 128 + SIGTERM, said)
        XCTAssertFalse(FileManager.default.fileExists(atPath: world.root.appendingPathComponent("report.json").path))
        XCTAssertEqual(try world.curl(world.presigned("GET", key: key)), 404, "a cancelled upload left an object")
        XCTAssertTrue(said.contains("multipart upload aborted"), said)
    }
}
