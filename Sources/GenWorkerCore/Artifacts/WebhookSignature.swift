import Crypto
import Foundation

/// A Standard Webhooks signing secret: `whsec_` then the key in base64. The spec asks for a
/// random key of 24 to 64 bytes; a shorter one is refused rather than used. `description`
/// and the mirror never show the key.
public struct WebhookSecret: Sendable, CustomStringConvertible, CustomReflectable {
    public static let prefix = "whsec_"
    public static let keyLengths = 24...64
    let key: SymmetricKey

    /// `whsec_<base64>`, or the base64 alone (the reference libraries take both); nil when
    /// it is not base64 or the key's length is outside ``keyLengths``.
    public init?(_ text: String) {
        let encoded = text.hasPrefix(Self.prefix) ? String(text.dropFirst(Self.prefix.count)) : text
        guard let bytes = Data(base64Encoded: encoded) else { return nil }
        self.init(bytes: Array(bytes))
    }

    public init?(bytes: [UInt8]) {
        guard Self.keyLengths.contains(bytes.count) else { return nil }
        key = SymmetricKey(data: bytes)
    }

    public var description: String { "\(Self.prefix)(redacted)" }
    public var customMirror: Mirror { Mirror(self, children: ["key": "redacted"], displayStyle: .struct) }
}

/// Webhook deliveries signed the Standard Webhooks way (standardwebhooks.com): the body is
/// signed together with the delivery's id and time, as HMAC-SHA256 over `id.timestamp.body`,
/// and sent as `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`
/// (`v1,<base64>`). Receivers check the time against a tolerance, so a captured delivery
/// cannot be replayed later, and the id lets them drop one they already processed.
public struct WebhookSignature: Sendable {
    public static let idHeader = "webhook-id"
    public static let timestampHeader = "webhook-timestamp"
    public static let signatureHeader = "webhook-signature"
    /// Five minutes either way, as in the reference libraries.
    public static let defaultTolerance: TimeInterval = 300

    public var secret: WebhookSecret

    public init(secret: WebhookSecret) { self.secret = secret }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    public func signature(id: String, timestamp: Int, body: [UInt8]) -> String {
        "v1," + Data(mac(id: id, timestamp: timestamp, body: body)).base64EncodedString()
    }

    /// The three headers of one delivery attempt. `id` names the event (the same on every
    /// retry); it must not contain `.`, which would let one signed content read as another.
    /// `timestamp` is the attempt's time, sent in whole seconds.
    public func sign(id: String, timestamp: Date, body: [UInt8]) -> [(String, String)] {
        precondition(!id.contains("."), "a webhook id must not contain '.'")
        let seconds = Int(timestamp.timeIntervalSince1970.rounded(.down))
        return [
            (Self.idHeader, id), (Self.timestampHeader, String(seconds)),
            (Self.signatureHeader, signature(id: id, timestamp: seconds, body: body)),
        ]
    }

    /// Whether `headers` (names in any case) carry a `v1` signature of `body` by this secret,
    /// made within `tolerance` seconds of `now` either way. The signature header may list
    /// several space-separated signatures (a secret being rotated); one match is enough.
    /// Signatures are compared in constant time.
    public func verify(headers: [(String, String)], body: [UInt8], now: Date, tolerance: TimeInterval = Self.defaultTolerance) -> Bool {
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
        guard let id = header(Self.idHeader), let timestampText = header(Self.timestampHeader),
            let signatures = header(Self.signatureHeader),
            !timestampText.isEmpty, timestampText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let timestamp = Int(timestampText),
            abs(now.timeIntervalSince1970 - TimeInterval(timestamp)) <= tolerance
        else { return false }
        let expected = mac(id: id, timestamp: timestamp, body: body)
        var matched = false
        for entry in signatures.split(separator: " ") {
            let parts = entry.split(separator: ",", maxSplits: 1)
            guard parts.count == 2, parts[0] == "v1", let candidate = Data(base64Encoded: String(parts[1])) else { continue }
            // No early exit: how long this takes must not say which entry matched.
            matched = Self.constantTimeEqual(Array(candidate), expected) || matched
        }
        return matched
    }

    func mac(id: String, timestamp: Int, body: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("\(id).\(timestamp).".utf8) + body, using: secret.key))
    }

    /// Equal lengths and equal bytes, in a time that depends on the length only.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
