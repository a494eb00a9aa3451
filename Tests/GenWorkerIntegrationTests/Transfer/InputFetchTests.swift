import Foundation
import GenWorkerCore
import TestSupport
import Transfer
import XCTest

/// Inputs by URL that must not be used: refused by the egress rules (resolved address,
/// redirects, the broker), missing, too large, endless, of the wrong kind. Each fails with
/// a message naming the param and what was wrong, and leaves no file behind.
final class InputFetchTests: XCTestCase {
    var world: TransferWorld!

    override func setUpWithError() throws { world = try TransferWorld() }
    override func tearDown() { world.tearDown() }

    /// Fetches `url` as an image under `configure`d rules; the error, or nil when it arrived.
    func fetch(_ url: String, media: InputRole = .image, _ configure: (inout WorkerConfiguration) -> Void = { _ in }) async -> TransferError? {
        var plan = TransferPlan(job: "f", configuration: world.configuration(configure))
        let destination = world.root.appendingPathComponent("input").path
        plan.fetches = [.init(param: "image", source: .url(url), media: media, destination: destination)]
        do {
            _ = try await world.run(plan)
            return nil
        } catch {
            XCTAssertFalse(FileManager.default.fileExists(atPath: destination), "a failed fetch left \(destination)")
            XCTAssertTrue(error.message.hasPrefix("params.image: "), error.message)
            return error
        }
    }

    func assertRefused(_ error: TransferError?, _ words: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(error?.code, .refused, error?.message ?? "not refused", file: file, line: line)
        XCTAssertTrue(error?.message.contains(words) ?? false, "\(error?.message ?? "-") should say \(words)", file: file, line: line)
    }

    func testCloudMetadataLoopbackPrivateRangesAndTheBrokerAreRefused() async {
        assertRefused(await fetch("http://169.254.169.254/latest/meta-data/"), "metadata")
        assertRefused(await fetch("\(world.fixture.base)/files/x.png") { $0.egress.allowNetworks = [] }, "loopback")
        assertRefused(await fetch("http://10.1.2.3/x.png"), "private")
        assertRefused(await fetch("http://192.168.7.7/x.png"), "private")
        assertRefused(await fetch("http://[::1]:\(world.fixture.port)/files/x.png") { $0.egress.allowNetworks = [] }, "loopback")
        // Allowed as a network, the broker's own port is still refused.
        assertRefused(await fetch("http://127.0.0.1:\(TestBroker.port)/"), "broker")
        // https only, unless egress.allow_http.
        assertRefused(await fetch("\(world.fixture.base)/files/x.png") { $0.egress.allowHTTP = false }, "https")
    }

    func testARedirectIntoAForbiddenAddressIsRefused() async {
        let into = "\(world.fixture.base)/redirect?to=http://169.254.169.254/latest/meta-data/iam/"
        assertRefused(await fetch(into), "metadata")
        let loop = "\(world.fixture.base)/redirect?to=\(world.fixture.base)/redirect?to=\(world.fixture.base)/files/x.png"
        assertRefused(await fetch(loop) { $0.egress.maxRedirects = 1 }, "redirects")
    }

    func testMissingTooLargeEndlessAndWrongKindInputsFailSayingWhich() async throws {
        let missing = await fetch("\(world.fixture.base)/files/none.png")
        XCTAssertEqual(missing?.code, .notFound, missing?.message ?? "fetched a missing file")
        XCTAssertTrue(missing?.message.contains("404") ?? false)

        _ = try world.file("files/big.png", bytes: 3 << 20, png: true)
        let large = await fetch("\(world.fixture.base)/files/big.png") { $0.inputs.maxMB = 2 }
        XCTAssertEqual(large?.code, .tooLarge, large?.message ?? "fetched past the bound")

        let endless = await fetch("\(world.fixture.base)/endless") { $0.inputs.maxMB = 4 }
        XCTAssertEqual(endless?.code, .tooLarge, endless?.message ?? "fetched an endless body")

        FileManager.default.createFile(atPath: world.root.appendingPathComponent("files/notes.png").path, contents: Data("hello, not a picture".utf8))
        let text = await fetch("\(world.fixture.base)/files/notes.png")
        XCTAssertEqual(text?.code, .wrongKind, text?.message ?? "fetched text as an image")

        _ = try world.file("files/real.png", bytes: 10_000, png: true)
        let audio = await fetch("\(world.fixture.base)/files/real.png", media: .audio)
        XCTAssertEqual(audio?.code, .wrongKind, audio?.message ?? "fetched a PNG as audio")
        XCTAssertTrue(audio?.message.contains("png") ?? false, audio?.message ?? "")
        let image = await fetch("\(world.fixture.base)/files/real.png")
        XCTAssertNil(image, "a PNG is an image")
    }

    func testAPresignedURLsSignatureNeverAppearsInAMessage() async {
        let url = world.presigned("GET", key: "tests/none-\(UUID().uuidString).png")
        let error = await fetch(url)
        XCTAssertEqual(error?.code, .notFound, error?.message ?? "fetched a missing key")
        XCTAssertFalse(error?.message.contains("X-Amz-Signature") ?? true, error?.message ?? "")
    }

    func testACancelDuringADownloadStopsItAndLeavesNoFile() throws {
        // An endless body under a large bound: the fetch goes on until SIGTERM.
        var plan = TransferPlan(job: "c", configuration: world.configuration { $0.inputs.maxMB = 100_000 })
        let destination = world.root.appendingPathComponent("input.png").path
        plan.fetches = [.init(param: "image", source: .url("\(world.fixture.base)/endless"), media: .image, destination: destination)]
        let planPath = world.root.appendingPathComponent("plan.json").path
        FileManager.default.createFile(atPath: planPath, contents: try JSONEncoder().encode(plan))
        let log = world.root.appendingPathComponent("fetch.log").path
        let child = try HTTPFixture.spawn(
            [TestBroker.genworkerExecutable, "transfer", "--plan", planPath, "--report", world.root.appendingPathComponent("r.json").path],
            output: log)
        let deadline = Date().addingTimeInterval(20)
        while ((try? FileManager.default.attributesOfItem(atPath: destination)[.size] as? Int) ?? 0) < (1 << 20) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertEqual(waitpid(child, nil, WNOHANG), 0, "the fetch ended by itself")
        let cancelledAt = Date()
        kill(child, SIGTERM)
        let status = HTTPFixture.wait(child)
        XCTAssertLessThan(Date().timeIntervalSince(cancelledAt), 5, "the fetch did not stop promptly")
        XCTAssertEqual(status >> 8 & 0xff, 128 + SIGTERM, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination), "a cancelled fetch left its partial file")
    }
}
