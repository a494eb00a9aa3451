import AsyncHTTPClient
import Foundation
import GenWorkerCore
import NIOCore

/// A read of the HTTP API for `status` and `workers` (`--api`): one GET with the token of
/// `GENWORKER_API_TOKEN`, the body as it came. The API answers from its fold of the ledger,
/// so a status is one request, not a replay of the window.
enum APIRead {
    static func get(_ base: String, _ path: String) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
        if let token = ProcessInfo.processInfo.environment["GENWORKER_API_TOKEN"], !token.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            return (Int(response.status.code), Array(body.readableBytesView))
        } catch {
            throw GenWorkerError(
                .brokerFailed, "the API at \(base) did not answer: \(error)", hint: "is genworker dashboard running there? (--api, GENWORKER_API_URL)"
            )
        }
    }

    /// The API's error message, or the body.
    static func message(_ body: [UInt8]) -> String {
        struct Envelope: Decodable {
            struct Inner: Decodable { var message: String }
            var error: Inner
        }
        return (try? JSONDecoder().decode(Envelope.self, from: Data(body)))?.error.message ?? String(decoding: body.prefix(300), as: UTF8.self)
    }
}
