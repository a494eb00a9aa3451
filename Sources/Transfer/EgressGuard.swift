import Foundation
import GenWorkerCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// Where a URL from a job may lead (`egress`): its scheme, then every address its host
/// resolves to, judged by ``AddressPolicy`` (no loopback, link-local and cloud metadata,
/// private ranges or the broker, unless `egress.allow_networks` says so). The request then
/// goes to the address that was judged (``pinned(_:)``), never to a second lookup's answer,
/// so a name that changes its answer between the check and the connect (DNS rebinding)
/// gains nothing.
struct EgressGuard: Sendable {
    let rules: TransferPlan.Egress
    let policy: AddressPolicy

    init(_ rules: TransferPlan.Egress) {
        self.rules = rules
        // The broker's endpoints by name and by every address the name has.
        var refused = rules.refusedEndpoints.compactMap(AddressPolicy.Endpoint.init)
        for endpoint in refused where IPAddress(endpoint.host) == nil {
            for address in (try? Self.resolve(endpoint.host)) ?? [] { refused.append(.init(host: address, port: endpoint.port)) }
        }
        policy = AddressPolicy(allowHTTP: rules.allowHTTP, allowList: rules.allowNetworks.compactMap(IPNetwork.init), refusedEndpoints: refused)
    }

    /// A URL a request may go to, and the address to connect to.
    struct Target: Sendable {
        var url: URL
        var host: String
        var address: String
    }

    /// Checks `text` (scheme, host, every resolved address); throws `.refused` naming why.
    func pinned(_ text: String) throws(TransferError) -> Target {
        let shown = Self.redacted(text)
        guard let url = URL(string: text), let host = url.host, !host.isEmpty else {
            throw TransferError(.refused, "\(shown) is not a valid URL")
        }
        if case .refused(let why) = policy.decide(url: url) {
            throw TransferError(.refused, "\(shown): \(why); refused by the egress rules")
        }
        let addresses = try Self.resolve(host)
        // Every answer is judged: a name with one public and one private address is refused,
        // as a client library would try the next address on failure.
        for address in addresses {
            if case .refused(let why) = policy.decide(url: url, resolvedAddress: address) {
                throw TransferError(.refused, "\(shown) leads to \(address): \(why); refused by the egress rules (egress.allow_networks)")
            }
        }
        return Target(url: url, host: host, address: addresses[0])
    }

    /// ``pinned(_:)`` on NIO's blocking-work threads: `getaddrinfo` blocks, and a name whose
    /// DNS never answers must not hold a thread of Swift's small cooperative pool (the
    /// dashboard and the health endpoints run there too).
    func pinnedOffThePool(_ text: String) async throws(TransferError) -> Target {
        do {
            return try await NIOThreadPool.singleton.runIfActive { try self.pinned(text) }
        } catch let error as TransferError {
            throw error
        } catch {
            throw TransferError(.connection, "\(Self.redacted(text)): cannot resolve: \(error)")
        }
    }

    /// The host's addresses, IPv4 and IPv6, as text.
    static func resolve(_ host: String) throws(TransferError) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw TransferError(.notFound, "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var out: [String] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(cString: buffer)
                if !out.contains(text) { out.append(text) }
            }
            next = info.pointee.ai_next
        }
        guard !out.isEmpty else { throw TransferError(.notFound, "\(host) has no address") }
        return out
    }

    /// A URL as it may be shown: without its query (a presigned URL's signature) or user info.
    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "the URL" }
        components.query = nil
        components.fragment = nil
        components.user = nil
        components.password = nil
        return components.string ?? "the URL"
    }
}
