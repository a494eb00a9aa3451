import Foundation
import XCTest

@testable import GenWorkerCore

/// Standard Webhooks signatures: the reference implementation's published vector, then
/// tampering, replay windows, secret rotation and malformed headers.
final class WebhookSignatureTests: XCTestCase {
    /// The vector of the standard-webhooks reference libraries' "sign function works" tests
    /// (github.com/standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts
    /// and libraries/go/webhook_test.go, TestWebhookSign).
    private let referenceSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    private let referenceID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    private let referenceTimestamp = Date(timeIntervalSince1970: 1_614_265_330)
    private let referenceBody = Array(#"{"test": 2432232314}"#.utf8)
    private let referenceSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    private func signer(_ secret: String? = nil) throws -> WebhookSignature {
        WebhookSignature(secret: try XCTUnwrap(WebhookSecret(secret ?? referenceSecret)))
    }

    private func referenceHeaders() throws -> [(String, String)] {
        try signer().sign(id: referenceID, timestamp: referenceTimestamp, body: referenceBody)
    }

    func testSigningReproducesTheReferenceVector() throws {
        let headers = try referenceHeaders()
        XCTAssertEqual(headers.map(\.0), ["webhook-id", "webhook-timestamp", "webhook-signature"])
        XCTAssertEqual(headers.map(\.1), [referenceID, "1614265330", referenceSignature])
        XCTAssertEqual(
            try signer("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").signature(id: referenceID, timestamp: 1_614_265_330, body: referenceBody),
            referenceSignature, "the secret without its whsec_ prefix is the same key")
        let fraction = try signer().sign(id: referenceID, timestamp: referenceTimestamp.addingTimeInterval(0.9), body: referenceBody)
        XCTAssertEqual(fraction.map(\.1), headers.map(\.1), "the timestamp is whole seconds, signed as sent")
    }

    func testTheReferenceDeliveryVerifiesWithinFiveMinutesEitherWay() throws {
        let headers = try referenceHeaders()
        for offset in [0.0, -300, 300, 299.5] {
            XCTAssertTrue(try signer().verify(headers: headers, body: referenceBody, now: referenceTimestamp.addingTimeInterval(offset)), "\(offset)")
        }
        for offset in [-301.0, 301, 86_400] {
            XCTAssertFalse(
                try signer().verify(headers: headers, body: referenceBody, now: referenceTimestamp.addingTimeInterval(offset)), "\(offset)")
        }
        XCTAssertTrue(try signer().verify(headers: headers, body: referenceBody, now: referenceTimestamp.addingTimeInterval(3000), tolerance: 3600))
        XCTAssertFalse(try signer().verify(headers: headers, body: referenceBody, now: referenceTimestamp.addingTimeInterval(11), tolerance: 10))
    }

    func testAnythingTamperedWithFailsVerification() throws {
        let headers = try referenceHeaders()
        let now = referenceTimestamp
        let tamperedBody = Array(#"{"test": 2432232315}"#.utf8)
        XCTAssertFalse(try signer().verify(headers: headers, body: tamperedBody, now: now), "body")
        XCTAssertFalse(try signer().verify(headers: headers, body: referenceBody + [0x20], now: now), "a trailing space")
        XCTAssertFalse(try signer().verify(headers: replacing(headers, "webhook-id", "msg_other"), body: referenceBody, now: now), "id")
        XCTAssertFalse(try signer().verify(headers: replacing(headers, "webhook-timestamp", "1614265331"), body: referenceBody, now: now), "time")
        let other = try signer("whsec_" + Data(repeating: 7, count: 32).base64EncodedString())
        XCTAssertFalse(other.verify(headers: headers, body: referenceBody, now: now), "another secret")
        let flipped = "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        XCTAssertFalse(try signer().verify(headers: replacing(headers, "webhook-signature", flipped), body: referenceBody, now: now), "one bit")
    }

    func testOneMatchingSignatureAmongSeveralIsEnough() throws {
        let headers = try referenceHeaders()
        let wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
        // The reference libraries' "multi sig payload is valid" list, the valid one third.
        let rotated = [wrong, "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", referenceSignature, wrong].joined(separator: " ")
        XCTAssertTrue(try signer().verify(headers: replacing(headers, "webhook-signature", rotated), body: referenceBody, now: referenceTimestamp))
        let noneValid = [wrong, "v2," + referenceSignature.dropFirst(3), "v1a," + referenceSignature.dropFirst(3)].joined(separator: " ")
        XCTAssertFalse(try signer().verify(headers: replacing(headers, "webhook-signature", noneValid), body: referenceBody, now: referenceTimestamp))
    }

    func testMissingOrMalformedHeadersFailVerification() throws {
        let headers = try referenceHeaders()
        let now = referenceTimestamp
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            XCTAssertFalse(try signer().verify(headers: headers.filter { $0.0 != name }, body: referenceBody, now: now), "without \(name)")
        }
        for (name, value) in [
            ("webhook-timestamp", "hello"), ("webhook-timestamp", ""), ("webhook-timestamp", "+1614265330"), ("webhook-timestamp", "1614265330.0"),
            ("webhook-signature", "v1,dawfeoifkpqwoekfpqoekf"), ("webhook-signature", "v1,"),
            ("webhook-signature", String(referenceSignature.prefix(8))),
            ("webhook-signature", referenceSignature.replacingOccurrences(of: "v1,", with: "")), ("webhook-signature", ""),
        ] {
            XCTAssertFalse(try signer().verify(headers: replacing(headers, name, value), body: referenceBody, now: now), "\(name): \(value)")
        }
        let capitalized = headers.map { ($0.0.capitalized, $0.1) }
        XCTAssertTrue(try signer().verify(headers: capitalized, body: referenceBody, now: now), "header names are case-insensitive")
    }

    func testSecretsMustBeBase64OfTwentyFourToSixtyFourBytes() {
        XCTAssertNotNil(WebhookSecret(referenceSecret))
        XCTAssertNotNil(WebhookSecret("whsec_" + Data(repeating: 1, count: 64).base64EncodedString()))
        XCTAssertNil(WebhookSecret("whsec_" + Data(repeating: 1, count: 65).base64EncodedString()))
        XCTAssertNil(WebhookSecret("whsec_" + Data(repeating: 1, count: 16).base64EncodedString()), "too short")
        XCTAssertNil(WebhookSecret("whsec_not base64!"))
        XCTAssertNil(WebhookSecret(""))
        XCTAssertNil(WebhookSecret("whsec_"))
    }

    func testPrintingASecretNeverShowsIt() throws {
        let secret = try XCTUnwrap(WebhookSecret(referenceSecret))
        var dumped = ""
        dump(secret, to: &dumped)
        dump(WebhookSignature(secret: secret), to: &dumped)
        for text in ["\(secret)", String(reflecting: secret), dumped, "\(WebhookSignature(secret: secret))"] {
            XCTAssertFalse(text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), text)
            XCTAssertTrue(text.contains("redacted"), text)
        }
    }

    func testTheComparisonNeedsEqualLengthAndEqualBytes() {
        XCTAssertTrue(WebhookSignature.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertTrue(WebhookSignature.constantTimeEqual([], []))
        XCTAssertFalse(WebhookSignature.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(WebhookSignature.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertFalse(WebhookSignature.constantTimeEqual([0x80], [0x00]))
    }

    private func replacing(_ headers: [(String, String)], _ name: String, _ value: String) -> [(String, String)] {
        headers.map { $0.0 == name ? (name, value) : $0 }
    }
}
