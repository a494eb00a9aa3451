import Crypto
import Foundation

/// AWS Signature Version 4 for S3 requests: the headers that authenticate a request, or a
/// presigned URL. Pure: the caller passes the time and the payload's hash, so nothing here
/// reads a clock, a file or the network.
///
/// S3's rules, which differ from other services': the path is URI-encoded once per segment
/// (`/` kept) and never normalized (`a/../b` and `//` are signed as they are), and the
/// payload's hash is always sent and signed as `x-amz-content-sha256`. The HTTP client must
/// send the path and query as ``presignedURL(method:url:expires:date:headers:)`` returns them,
/// and the `Host` header as ``hostHeader(for:)`` gives it, or S3 computes another signature.
public struct SigV4Signer: Sendable {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash for a body that is not hashed (presigned URLs, streamed uploads).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of no bytes: the payload hash of a GET, HEAD or DELETE.
    public static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// What S3 accepts as a presigned URL's `X-Amz-Expires`: one second to seven days.
    public static let presignedExpiryRange = 1...604_800
    static let queryAuthenticationNames: Set<String> = [
        "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires", "x-amz-signedheaders", "x-amz-security-token",
        "x-amz-signature",
    ]

    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Lowercase hex SHA-256 of `bytes`: a payload hash.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String { hex(SHA256.hash(data: bytes)) }

    /// The `Host` header that is signed: the URL's host, with its port unless it is the
    /// scheme's default (80 for http, 443 for https); an IPv6 address in brackets.
    public static func hostHeader(for url: URL) -> String {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        var host = components?.percentEncodedHost ?? ""
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        guard let port = components?.port else { return host }
        let defaultPort = url.scheme?.lowercased() == "http" ? 80 : 443
        return port == defaultPort ? host : "\(host):\(port)"
    }

    /// The headers to add to a request so that S3 accepts it: `x-amz-date`,
    /// `x-amz-content-sha256`, `x-amz-security-token` when the credentials have a session
    /// token, and `Authorization`. Every header in `headers` is signed (the caller sends them
    /// unchanged), and `host` from the URL unless `headers` has one. `payloadSHA256` is the
    /// body's ``sha256Hex(_:)``, or ``unsignedPayload``.
    public func signedHeaders(
        method: String, url: URL, headers: [(String, String)], payloadSHA256: String, date: Date
    ) -> [(String, String)] {
        let timestamp = Self.timestamp(date)
        var added = [("x-amz-date", timestamp), ("x-amz-content-sha256", payloadSHA256)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        // The caller's copies of what this adds would be signed twice and sent twice.
        let replaced = Set(added.map(\.0) + ["authorization"])
        let kept = headers.filter { !replaced.contains($0.0.lowercased()) }
        let signed = authorize(method: method, url: url, headers: kept + added, payloadSHA256: payloadSHA256, timestamp: timestamp)
        return added + [("Authorization", signed.authorization)]
    }

    /// `url` with query authentication: anyone holding the URL can make this one request
    /// until `expires` seconds (``presignedExpiryRange``) after `date`. The payload is
    /// unsigned; `headers` are signed beside `host`, and the request must carry them
    /// unchanged. The URL's own query parameters are kept and signed.
    public func presignedURL(method: String, url: URL, expires: Int, date: Date, headers: [(String, String)] = []) -> URL {
        precondition(Self.presignedExpiryRange.contains(expires), "X-Amz-Expires must be within 1...604800 seconds, not \(expires)")
        let timestamp = Self.timestamp(date)
        let canonicalHeaders = SigV4Canonical.headers(withHost: Self.hostHeader(for: url), headers)
        // A presigned URL signed again gets new query authentication, not two.
        var query = SigV4Canonical.queryItems(of: url).filter { !Self.queryAuthenticationNames.contains($0.0.lowercased()) }
        query += [
            ("X-Amz-Algorithm", Self.algorithm), ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(timestamp))"),
            ("X-Amz-Date", timestamp), ("X-Amz-Expires", String(expires)), ("X-Amz-SignedHeaders", canonicalHeaders.names),
        ]
        if let token = credentials.sessionToken { query.append(("X-Amz-Security-Token", token)) }
        let canonicalQuery = SigV4Canonical.query(query)
        let request = canonicalRequest(
            method: method, url: url, query: canonicalQuery, headers: canonicalHeaders, payloadSHA256: Self.unsignedPayload)
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        components?.user = nil
        components?.password = nil
        components?.fragment = nil
        components?.percentEncodedPath = SigV4Canonical.uri(of: url)
        components?.percentEncodedQuery = canonicalQuery + "&X-Amz-Signature=" + signature(canonicalRequest: request, timestamp: timestamp)
        guard let presigned = components?.url else { preconditionFailure("a URL rebuilt from \(url)'s own parts is a URL") }
        return presigned
    }

    /// The canonical request and the `Authorization` value for a request whose headers
    /// (`x-amz-date` among them) are all signed as given, plus `host` from the URL when they
    /// lack one. What ``signedHeaders(method:url:headers:payloadSHA256:date:)`` builds on, and
    /// what the generic SigV4 test suite (which signs no `x-amz-content-sha256`) checks.
    func authorize(
        method: String, url: URL, headers: [(String, String)], payloadSHA256: String, timestamp: String
    ) -> (canonicalRequest: String, authorization: String) {
        let canonicalHeaders = SigV4Canonical.headers(withHost: Self.hostHeader(for: url), headers)
        let query = SigV4Canonical.query(SigV4Canonical.queryItems(of: url))
        let request = canonicalRequest(method: method, url: url, query: query, headers: canonicalHeaders, payloadSHA256: payloadSHA256)
        let authorization =
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(scope(timestamp)), SignedHeaders=\(canonicalHeaders.names), "
            + "Signature=\(signature(canonicalRequest: request, timestamp: timestamp))"
        return (request, authorization)
    }

    func canonicalRequest(method: String, url: URL, query: String, headers: (block: String, names: String), payloadSHA256: String) -> String {
        [method, SigV4Canonical.uri(of: url), query, headers.block, headers.names, payloadSHA256].joined(separator: "\n")
    }

    func stringToSign(canonicalRequest: String, timestamp: String) -> String {
        [Self.algorithm, timestamp, scope(timestamp), Self.sha256Hex(Array(canonicalRequest.utf8))].joined(separator: "\n")
    }

    func signature(canonicalRequest: String, timestamp: String) -> String {
        // The key is derived from the secret through the scope, so a leaked signing key is
        // good for one day, one region and one service only.
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [String(timestamp.prefix(8)), region, service, "aws4_request"] {
            key = SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key))
        }
        let text = stringToSign(canonicalRequest: canonicalRequest, timestamp: timestamp)
        return Self.hex(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
    }

    /// `date/region/service/aws4_request`: what the signature is good for.
    func scope(_ timestamp: String) -> String { "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request" }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, computed from the epoch seconds, so no locale, calendar
    /// or time zone setting can change it.
    static func timestamp(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let (quotient, remainder) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let days = remainder < 0 ? quotient - 1 : quotient
        let secondOfDay = remainder < 0 ? remainder + 86_400 : remainder
        // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func digits(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return digits(year, 4) + digits(month, 2) + digits(day, 2) + "T" + digits(secondOfDay / 3600, 2)
            + digits(secondOfDay / 60 % 60, 2) + digits(secondOfDay % 60, 2) + "Z"
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The canonical forms SigV4 hashes: URI, query and headers.
enum SigV4Canonical {
    /// The URL's path, each segment decoded then URI-encoded once, `/` kept; `/` when empty.
    static func uri(of url: URL) -> String {
        let path = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedPath ?? ""
        if path.isEmpty { return "/" }
        return path.split(separator: "/", omittingEmptySubsequences: false)
            .map { segment in encode(segment.removingPercentEncoding ?? String(segment)) }
            .joined(separator: "/")
    }

    /// The URL's query as decoded name and value pairs, in order; `name` alone has an empty value.
    static func queryItems(of url: URL) -> [(String, String)] {
        guard let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.percentEncodedQuery else { return [] }
        return query.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in text.removingPercentEncoding ?? String(text) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// Names and values URI-encoded, sorted by encoded name then value, joined with `&`.
    static func query(_ items: [(String, String)]) -> String {
        items.map { (encode($0.0), encode($0.1)) }
            .sorted { $0.0 == $1.0 ? $0.1.utf8.lexicographicallyPrecedes($1.1.utf8) : $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// `name:value\n` for each header, names lowercased and sorted, values trimmed with inner
    /// runs of whitespace made one space, a repeated name's values joined with `,` in order;
    /// and the names joined with `;`. `host` is added unless `headers` has one.
    static func headers(withHost host: String, _ headers: [(String, String)]) -> (block: String, names: String) {
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            let collapsed = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            values[name.lowercased(), default: []].append(collapsed)
        }
        if values["host"] == nil { values["host"] = [host] }
        let names = values.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let block = names.map { "\($0):\(values[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    /// RFC 3986 percent-encoding of UTF-8: unreserved characters (`A-Z a-z 0-9 - . _ ~`) kept,
    /// every other byte as `%XX` in uppercase; a space is `%20`, never `+`.
    static func encode(_ text: String) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
