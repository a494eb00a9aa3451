import AsyncHTTPClient
import Foundation
import GenWorkerCore
import Logging
import NIOCore
import NIOHTTP1

/// The operator's S3-compatible store (`storage`): requests signed with SigV4 using the
/// credentials of the environment or the credentials file. Uploads stream from disk: one
/// PUT up to `storage.multipart_threshold_mb`, above it a multipart upload with one part in
/// memory at a time, aborted if anything fails or the step is cancelled (no partial object
/// is ever visible). Every request is retried on a 5xx, a 429 or a broken connection.
struct ObjectStore: Sendable {
    let store: TransferPlan.Store
    let signer: SigV4Signer
    let logger: Logger

    init(_ store: TransferPlan.Store, credentials: AWSCredentials, logger: Logger) {
        self.store = store
        signer = SigV4Signer(credentials: credentials, region: store.region)
        self.logger = logger
    }

    /// How every transfer client is set up: redirects followed by hand (job URLs are checked at
    /// each hop), a 10-s connect, and no retries of its own (`withRetries` has the settings').
    static func clientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// A client for one try: after a refused or broken connection AsyncHTTPClient's pool may
    /// hold the failure, so each try starts clean (a few per upload; parts are megabytes).
    static func withClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        let client = HTTPClient(configuration: Self.clientConfiguration())
        do {
            let result = try await body(client)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// `s3://bucket/key`, as results name a stored video.
    func uri(bucket: String? = nil, key: String) -> String { "s3://\(bucket ?? store.bucket)/\(key)" }

    /// The object's URL, by `storage.addressing`.
    func objectURL(bucket: String? = nil, key: String, query: String? = nil) -> URL {
        let bucket = bucket ?? store.bucket
        var components = URLComponents(string: store.endpoint)!
        let base = components.percentEncodedPath.hasSuffix("/") ? String(components.percentEncodedPath.dropLast()) : components.percentEncodedPath
        if store.pathStyle {
            components.percentEncodedPath = "\(base)/\(Self.encode(bucket))/\(Self.encode(key))"
        } else {
            components.host = "\(bucket).\(components.host ?? "")"
            components.percentEncodedPath = "\(base)/\(Self.encode(key))"
        }
        components.percentEncodedQuery = query
        return components.url!
    }

    /// A key's path as S3 wants it: each byte but RFC 3986's unreserved ones and "/" percent-encoded.
    static func encode(_ key: String) -> String {
        var out = ""
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// The URL a result names for `key`, as `outputs.url` says.
    func resultURL(key: String) -> String? {
        switch store.url {
        case .none: return nil
        case .public:
            let base = store.publicBaseURL.hasSuffix("/") ? store.publicBaseURL : store.publicBaseURL + "/"
            return base + Self.encode(key)
        case .presigned:
            return signer.presignedURL(method: "GET", url: objectURL(key: key), expires: store.urlExpiresSeconds, date: Date()).absoluteString
        }
    }

    // MARK: requests

    /// One signed request; a status outside 2xx becomes a ``TransferError`` naming the store's
    /// error code. `body` is made anew for each try.
    private func send(
        _ method: HTTPMethod, url: URL, payloadSHA256: String, headers: [(String, String)] = [],
        body: (@Sendable () -> HTTPClientRequest.Body)? = nil, what: String, timeout: TimeAmount = .minutes(30)
    ) async throws(TransferError) -> (HTTPResponseHead, ByteBuffer) {
        try await withRetries(attempts: store.attempts, what: what, logger: logger) { () async throws(TransferError) in
            var request = HTTPClientRequest(url: url.absoluteString)
            request.method = method
            let signed = signer.signedHeaders(
                method: method.rawValue, url: url, headers: headers, payloadSHA256: payloadSHA256, date: Date())
            for (name, value) in headers + signed { request.headers.add(name: name, value: value) }
            if let body { request.body = body() }
            do {
                return try await Self.withClient { client in
                    let response = try await client.execute(request, timeout: timeout)
                    let content = try await response.body.collect(upTo: 1 << 20)
                    let head = HTTPResponseHead(version: response.version, status: response.status, headers: response.headers)
                    guard (200..<300).contains(Int(response.status.code)) else {
                        throw Self.storeError(status: response.status, body: content, what: what)
                    }
                    return (head, content)
                }
            } catch let error as TransferError {
                throw error
            } catch {
                throw GuardedHTTP.describe(error, url: url.absoluteString)
            }
        }
    }

    static func storeError(status: HTTPResponseStatus, body: ByteBuffer, what: String) -> TransferError {
        let text = String(buffer: body)
        let code = Self.element("Code", in: text)
        let message = Self.element("Message", in: text)
        // One line, bounded: it ends up as the job's message (Azure's carry RequestId and Time lines).
        let detail = String(
            [code, message].compactMap { $0 }.joined(separator: ": ").split(whereSeparator: \.isNewline).first ?? ""
        ).prefix(200)
        let line = "\(what): HTTP \(status.code)\(detail.isEmpty ? "" : " (\(detail))")"
        if status == .notFound { return TransferError(.notFound, line) }
        return TransferError(.status(Int(status.code)), line)
    }

    /// The text of the first `<name>…</name>` of an XML answer (S3's answers are that simple).
    static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else {
            return nil
        }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    // MARK: upload

    /// Puts the file at `key`; returns what a result says of it.
    func upload(file: String, key: String) async throws(TransferError) -> TransferReport.Stored {
        let digest = try FileDigest.of(file)
        let url = objectURL(key: key)
        let target = "\(uri(key: key)) at \(store.endpoint)"
        if digest.bytes <= store.multipartThresholdBytes {
            let length = digest.bytes
            _ = try await send(
                .PUT, url: url, payloadSHA256: digest.hex, headers: [("Content-Type", "video/mp4"), ("Content-Length", String(length))],
                body: { FileChunks(path: file, offset: 0, length: length).body }, what: "upload to \(target)")
        } else {
            try await multipartUpload(file: file, bytes: digest.bytes, url: url, what: "upload to \(target)")
        }
        logger.info("uploaded \(digest.bytes) bytes to \(target)")
        return TransferReport.Stored(uri: uri(key: key), url: resultURL(key: key), bytes: digest.bytes, sha256: digest.hex)
    }

    private func multipartUpload(file: String, bytes: Int64, url: URL, what: String) async throws(TransferError) {
        let base = url.absoluteString
        let emptyHash = SigV4Signer.emptyPayloadSHA256
        let (_, created) = try await send(
            .POST, url: URL(string: base + "?uploads=")!, payloadSHA256: emptyHash, headers: [("Content-Type", "video/mp4")],
            what: "\(what): start a multipart upload")
        guard let uploadID = Self.element("UploadId", in: String(buffer: created)) else {
            throw TransferError(.status(200), "\(what): the store answered no UploadId")
        }
        let idQuery = "uploadId=\(Self.queryEncode(uploadID))"
        let parts = (bytes + store.partSizeBytes - 1) / store.partSizeBytes
        logger.info("\(what): multipart upload started: \(bytes) bytes in \(parts) parts")
        do throws(TransferError) {
            var etags: [String] = []
            var offset: Int64 = 0
            var number = 1
            while offset < bytes {
                try Self.checkCancelled(what)
                let length = min(store.partSizeBytes, bytes - offset)
                let part = try FileDigest.of(file, offset: offset, length: length)
                let from = offset
                let (head, _) = try await send(
                    .PUT, url: URL(string: base + "?partNumber=\(number)&\(idQuery)")!, payloadSHA256: part.hex,
                    headers: [("Content-Length", String(length))], body: { FileChunks(path: file, offset: from, length: length).body },
                    what: "\(what): part \(number)")
                guard let etag = head.headers.first(name: "etag") else { throw TransferError(.status(200), "\(what): part \(number) has no ETag") }
                etags.append(etag)
                offset += length
                number += 1
            }
            let listed = etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\($0.element)</ETag></Part>" }
            let xml = Array("<CompleteMultipartUpload>\(listed.joined())</CompleteMultipartUpload>".utf8)
            let (_, completed) = try await send(
                .POST, url: URL(string: base + "?\(idQuery)")!, payloadSHA256: SigV4Signer.sha256Hex(xml),
                headers: [("Content-Type", "application/xml"), ("Content-Length", String(xml.count))],
                body: { .bytes(xml) }, what: "\(what): complete")
            // S3 may answer 200 with an error inside the body when completing.
            if let code = Self.element("Code", in: String(buffer: completed)) {
                throw TransferError(.status(200), "\(what): complete: \(code)")
            }
        } catch {
            await abort(base: base, idQuery: idQuery, what: what)
            throw error
        }
    }

    /// Drops a multipart upload's parts. Runs in a task of its own: the step's task may be
    /// cancelled (the job was), and the abort must still go out.
    private func abort(base: String, idQuery: String, what: String) async {
        let store = self
        let aborted = await Task { () -> Bool in
            do {
                _ = try await store.send(
                    .DELETE, url: URL(string: base + "?\(idQuery)")!, payloadSHA256: SigV4Signer.emptyPayloadSHA256,
                    what: "\(what): abort", timeout: .seconds(30))
                return true
            } catch { return false }
        }.value
        logger.warning("\(what): multipart upload \(aborted ? "aborted" : "not aborted (its parts expire by the bucket's lifecycle rules)")")
    }

    // MARK: download

    /// Gets `s3://bucket/key` into `file`, at most `maxBytes`.
    func download(bucket: String, key: String, to file: String, maxBytes: Int64, deadline: NIODeadline) async throws(TransferError) -> Int64 {
        let url = objectURL(bucket: bucket, key: key)
        let shown = uri(bucket: bucket, key: key)
        return try await withRetries(attempts: store.attempts, what: "fetch \(shown)", logger: logger) { () async throws(TransferError) in
            var request = HTTPClientRequest(url: url.absoluteString)
            for (name, value) in signer.signedHeaders(
                method: "GET", url: url, headers: [], payloadSHA256: SigV4Signer.emptyPayloadSHA256, date: Date())
            {
                request.headers.add(name: name, value: value)
            }
            do {
                return try await Self.withClient { client in
                    let response = try await client.execute(request, deadline: deadline)
                    guard response.status == .ok else {
                        throw Self.storeError(status: response.status, body: try await response.body.collect(upTo: 1 << 20), what: "fetch \(shown)")
                    }
                    return try await ResponseFile.write(response, to: file, maxBytes: maxBytes, shown: shown)
                }
            } catch let error as TransferError {
                throw error
            } catch {
                throw GuardedHTTP.describe(error, url: url.absoluteString)
            }
        }
    }

    static func queryEncode(_ value: String) -> String {
        value.addingPercentEncoding(
            withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"))
            ?? value
    }

    static func checkCancelled(_ what: String) throws(TransferError) {
        if Task.isCancelled { throw TransferError(.cancelled, "\(what): cancelled") }
    }
}
