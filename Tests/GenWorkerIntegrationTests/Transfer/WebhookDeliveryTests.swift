import Foundation
import GenWorkerCore
import Logging
import ServiceLifecycle
import TestSupport
import Transfer
import XCTest

/// Webhooks to a real HTTP receiver (Tests/http/fixture.py) that fails its first two
/// deliveries: the third is taken, every try carries the same `webhook-id`, and the
/// signature verifies with the deployment's secret (and not with another).
final class WebhookDeliveryTests: XCTestCase {
    func testADeliveryIsRetriedAfterTwoFailuresAndItsSignatureVerifies() async throws {
        let world = try TransferWorld()
        defer { world.tearDown() }
        let secret = try XCTUnwrap(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let service = WebhookService(
            configuration: world.configuration { $0.webhooks.retryForSeconds = 30 }, secret: secret, logger: Logger(label: "test"))
        var event = JobEvent(id: "hook-1", task: "t2v-A14B", event: .completed, worker: "w1")
        event.outputURI = "s3://bucket/key"
        let running = Task { try await service.run() }
        defer { running.cancel() }
        service.deliver(event, to: Webhook(url: "\(world.fixture.base)/hook?fail=2"))
        // `progress` is not among the default events: never sent.
        service.deliver(
            JobEvent(id: "hook-1", task: "t2v-A14B", event: .progress, worker: "w1"), to: Webhook(url: "\(world.fixture.base)/hook?fail=2"))
        let deadline = Date().addingTimeInterval(20)
        while world.fixture.requests().count < 3 && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
        let requests = world.fixture.requests()
        XCTAssertEqual(requests.map { $0["status"] as? Int }, [500, 500, 204])
        let ids = Set(requests.compactMap { ($0["headers"] as? [String: String])?.first { $0.key.lowercased() == "webhook-id" }?.value })
        XCTAssertEqual(ids, ["hook-1-completed"])
        let last = try XCTUnwrap(requests.last)
        let headers = try XCTUnwrap(last["headers"] as? [String: String]).map { ($0.key, $0.value) }
        let body = [UInt8](try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(last["body"] as? String))))
        XCTAssertTrue(WebhookSignature(secret: secret).verify(headers: headers, body: body, now: Date()))
        let other = try XCTUnwrap(WebhookSecret("whsec_" + Data(repeating: 7, count: 32).base64EncodedString()))
        XCTAssertFalse(WebhookSignature(secret: other).verify(headers: headers, body: body, now: Date()))
        XCTAssertEqual(try JobEvent.decode(body), event)
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertEqual(world.fixture.requests().count, 3, "a taken delivery is not sent again; progress was filtered out")
    }

    func testAWebhookIntoAForbiddenAddressIsNeverSent() async throws {
        let world = try TransferWorld()
        defer { world.tearDown() }
        let secret = try XCTUnwrap(WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let service = WebhookService(
            configuration: world.configuration { $0.egress.allowNetworks = [] }, secret: secret, logger: Logger(label: "test"))
        let running = Task { try await service.run() }
        defer { running.cancel() }
        service.deliver(JobEvent(id: "hook-2", task: "t2v-A14B", event: .failed, worker: "w1"), to: Webhook(url: "\(world.fixture.base)/hook"))
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(world.fixture.requests().count, 0, "a loopback webhook was delivered")
    }
}
