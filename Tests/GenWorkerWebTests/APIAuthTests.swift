import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import XCTest

/// The API's doors over real loopback HTTP, without a broker (the follower never runs: the
/// fold is empty): reads open or closed by `api.read_requires_token`, tokens matched by their
/// SHA-256, roles, and 405 for a method the document does not list.
final class APIAuthTests: XCTestCase {
    static func sha256(_ text: String) -> String { SigV4Signer.sha256Hex(Array(text.utf8)) }

    func curl(_ port: Int, _ method: String, _ path: String, token: String? = nil) -> Int {
        var arguments = ["-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}", "-X", method]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        if method == "POST" { arguments += ["-d", "{}"] }
        let out = (try? TestBroker.run("/usr/bin/curl", arguments + ["http://127.0.0.1:\(port)\(path)"])) ?? ""
        return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func withAPI(readRequiresToken: Bool, _ body: (Int) throws -> Void) async throws {
        var configuration = WorkerConfiguration()
        configuration.dashboard.address = "127.0.0.1"
        configuration.dashboard.port = 0
        configuration.api.readRequiresToken = readRequiresToken
        configuration.api.tokens = ["reader": "read:\(Self.sha256("r-token"))", "client": "submit:\(Self.sha256("s-token"))"]
        let logger = Logger(label: "test")
        let view = FleetView(retention: 3600, maxJobs: 1000)
        let follower = FleetFollower(configuration: configuration, view: view, logger: logger)
        let port = Mutex<Int?>(nil)
        let application = try DashboardApplication(
            configuration: configuration, follower: follower, logger: logger, onListening: { p in port.withLock { $0 = p } })
        let group = ServiceGroup(services: [application], logger: logger)
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let p = try XCTUnwrap(port.withLock { $0 })
        try body(p)
        await group.triggerGracefulShutdown()
        try await running.value
    }

    func testReadsAreOpenUnlessTheyRequireATokenAndAWrongTokenIsNeverAnonymous() async throws {
        try await withAPI(readRequiresToken: false) { port in
            XCTAssertEqual(curl(port, "GET", "/v1/jobs"), 200)
            XCTAssertEqual(curl(port, "GET", "/v1/jobs", token: "wrong"), 401)
            XCTAssertEqual(curl(port, "GET", "/v1/jobs/nope"), 404)
            XCTAssertEqual(curl(port, "POST", "/v1/jobs"), 401, "submitting needs a token")
            XCTAssertEqual(curl(port, "POST", "/v1/jobs", token: "r-token"), 403, "a read token may not submit")
            XCTAssertEqual(curl(port, "POST", "/v1/jobs", token: "s-token"), 400, "a submit token gets as far as the body")
            XCTAssertEqual(curl(port, "DELETE", "/v1/jobs"), 405)
        }
        try await withAPI(readRequiresToken: true) { port in
            XCTAssertEqual(curl(port, "GET", "/v1/jobs"), 401)
            XCTAssertEqual(curl(port, "GET", "/v1/demand"), 401)
            XCTAssertEqual(curl(port, "GET", "/v1/jobs", token: "r-token"), 200)
            XCTAssertEqual(curl(port, "GET", "/v1/openapi.yaml"), 200, "the contract stays open")
        }
    }
}
