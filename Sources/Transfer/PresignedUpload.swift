import Foundation
import GenWorkerCore
import Logging
import NIOCore

/// The video PUT to a job's own URL (`output.put_url`, presigned by its client): the worker
/// needs no credentials for it; the URL allows one object for a while. One PUT, streamed
/// from disk (a presigned URL cannot do a multipart upload), checked by the egress rules.
struct PresignedUpload: Sendable {
    let http: GuardedHTTP
    let attempts: Int
    let logger: Logger

    func put(file: String, to destination: OutputDestination) async throws(TransferError) -> TransferReport.Stored {
        let digest = try FileDigest.of(file)
        let shown = EgressGuard.redacted(destination.putURL)
        let length = digest.bytes
        let headers = destination.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + [("Content-Length", String(length))]
        try await withRetries(attempts: attempts, what: "upload to \(shown)", logger: logger) { () async throws(TransferError) in
            try await http.execute(
                method: .PUT, url: destination.putURL, headers: headers,
                body: FileChunks(path: file, offset: 0, length: length).body, deadline: .now() + .hours(24)
            ) { response async throws(TransferError) in
                guard (200..<300).contains(Int(response.status.code)) else {
                    let body = (try? await response.body.collect(upTo: 1 << 16)) ?? ByteBuffer()
                    throw ObjectStore.storeError(status: response.status, body: body, what: "upload to \(shown)")
                }
            }
        }
        logger.info("uploaded \(length) bytes to \(shown)")
        return TransferReport.Stored(uri: shown, url: nil, bytes: length, sha256: digest.hex)
    }
}
