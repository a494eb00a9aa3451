import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Requests to URLs that jobs give (input URLs, a job's own output URL, webhooks): each hop
/// is checked by the ``EgressGuard`` and connects to the address it checked
/// (`dnsOverride`), TLS still verifying the URL's host name. A GET follows redirects itself,
/// each checked again; other methods follow none.
struct GuardedHTTP: Sendable {
    let egress: EgressGuard

    /// Sends the request and hands the response to `consume` while the connection lives.
    func execute<T: Sendable>(
        method: HTTPMethod, url: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
        deadline: NIODeadline, consume: (HTTPClientResponse) async throws(TransferError) -> T
    ) async throws(TransferError) -> T {
        var current = url
        var hops = 0
        while true {
            let target = try await egress.pinnedOffThePool(current)
            var configuration = ObjectStore.clientConfiguration()
            configuration.dnsOverride = [target.host: target.address]
            let client = HTTPClient(configuration: configuration)
            var request = HTTPClientRequest(url: current)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = body }  // a file's body reopens the file for each send
            let outcome: Result<T, TransferError>
            var next: String?
            do {
                let response = try await client.execute(request, deadline: deadline)
                if method == .GET, (300..<400).contains(Int(response.status.code)), response.status != .notModified,
                    let location = response.headers.first(name: "location")
                {
                    guard hops < egress.rules.maxRedirects else {
                        throw TransferError(
                            .refused, "\(EgressGuard.redacted(url)): more than \(egress.rules.maxRedirects) redirects (egress.max_redirects)")
                    }
                    guard let resolved = URL(string: location, relativeTo: target.url)?.absoluteString else {
                        throw TransferError(.refused, "\(EgressGuard.redacted(current)) redirects to an invalid URL")
                    }
                    next = resolved
                    outcome = .failure(TransferError(.status(Int(response.status.code)), "redirect"))
                } else {
                    outcome = .success(try await consume(response))
                }
            } catch let error as TransferError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(Self.describe(error, url: current))
            }
            try? await client.shutdown()
            if let next {
                hops += 1
                current = next
                continue
            }
            return try outcome.get()
        }
    }

    /// An AsyncHTTPClient or NIO error in words, for a URL shown without its query.
    static func describe(_ error: any Error, url: String) -> TransferError {
        let shown = EgressGuard.redacted(url)
        if error is CancellationError { return TransferError(.cancelled, "\(shown): cancelled") }
        if let client = error as? HTTPClientError {
            if client == .deadlineExceeded || client == .readTimeout || client == .connectTimeout {
                return TransferError(.timedOut, "\(shown): timed out")
            }
            if client == .cancelled { return TransferError(.cancelled, "\(shown): cancelled") }
        }
        return TransferError(.connection, "\(shown): \(String(describing: error).prefix(300))")
    }
}
