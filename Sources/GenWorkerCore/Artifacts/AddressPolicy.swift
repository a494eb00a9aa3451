import Foundation

/// Where a URL that came with a job (an input to download, a webhook to call) may lead the
/// worker, against server-side request forgery: a job must not make the worker read its
/// cloud's metadata service, a loopback admin port, the private network it sits in, or the
/// broker's own endpoints. Pure decisions; the HTTP side asks twice:
///
/// 1. ``decide(url:)`` before resolving: the scheme (https, http only when allowed, nothing
///    else), no credentials in the URL, a host that is a name or a plain address, not a
///    refused endpoint;
/// 2. ``decide(url:resolvedAddress:)`` for every address the name resolved to, right before
///    connecting to it (and again after every redirect), so a name that resolves to a
///    private address is refused too.
///
/// The operator's allow-list (CIDRs) overrides refusals for address ranges only; a refused
/// endpoint stays refused even inside an allowed range.
public struct AddressPolicy: Sendable {
    /// A block of addresses no job may reach unless allowed, and its name for people.
    public struct SpecialRange: Sendable, Hashable, CustomStringConvertible {
        public let network: IPNetwork
        public let name: String
        public var description: String { "\(name) (\(network))" }
    }

    /// A host and port no job may reach (the broker's own `host:port`s). A host is compared
    /// as written, and as an address when it is one: list the broker's addresses beside its
    /// names, so that a URL naming it by address, or a name resolving to it, is refused too.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// Lowercased, without brackets or a trailing dot.
        public let host: String
        public let port: Int

        public init(host: String, port: Int) {
            self.host = AddressPolicy.normalizedHost(host)
            self.port = port
        }

        /// `host:port` or `[ipv6]:port`; nil without a port in 1...65535.
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port)
            else { return nil }
            let host = String(text[..<colon])
            guard !host.isEmpty, !host.contains(":") || (host.hasPrefix("[") && host.hasSuffix("]")) else { return nil }
            self.init(host: host, port: port)
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Whether `http` URLs are allowed beside `https`.
    public var allowHTTP: Bool
    /// Address blocks a job may reach even though they are special (an internal bucket).
    public var allowList: [IPNetwork]
    /// Endpoints refused whatever the allow-list says.
    public var refusedEndpoints: [Endpoint]

    public init(allowHTTP: Bool = false, allowList: [IPNetwork] = [], refusedEndpoints: [Endpoint] = []) {
        self.allowHTTP = allowHTTP
        self.allowList = allowList
        self.refusedEndpoints = refusedEndpoints
    }

    /// Checked in order, so a narrow block (the metadata address) is named before the wide
    /// one it sits in.
    public static let specialRanges: [SpecialRange] = [
        ("0.0.0.0/8", "unspecified"), ("127.0.0.0/8", "loopback"),
        ("169.254.169.254/32", "cloud metadata"), ("169.254.0.0/16", "link-local"),
        ("10.0.0.0/8", "private"), ("172.16.0.0/12", "private"), ("192.168.0.0/16", "private"),
        ("100.100.100.200/32", "cloud metadata"), ("100.64.0.0/10", "carrier-grade NAT"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"), ("192.0.2.0/24", "reserved (documentation)"),
        ("198.51.100.0/24", "reserved (documentation)"), ("203.0.113.0/24", "reserved (documentation)"),
        ("198.18.0.0/15", "reserved (benchmarking)"), ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"), ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"), ("::1/128", "loopback"), ("fe80::/10", "link-local"),
        ("fd00:ec2::254/128", "cloud metadata"), ("fc00::/7", "private"), ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"), ("64:ff9b:1::/48", "local-use NAT64"), ("100::/64", "reserved (discard-only)"),
        ("2001:db8::/32", "reserved (documentation)"),
    ].map { SpecialRange(network: IPNetwork($0.0)!, name: $0.1) }

    /// The first special range `address` is in, nil for an ordinary public address. An
    /// address that carries an IPv4 address (``IPAddress/embeddedIPv4``) is not judged here:
    /// ``decide(address:)`` judges the IPv4 address it carries.
    public static func specialRange(containing address: IPAddress) -> SpecialRange? {
        specialRanges.first { $0.network.contains(address) }
    }

    /// What can be judged before resolving the URL's host.
    public func decide(url: URL) -> AddressDecision {
        guard let scheme = url.scheme?.lowercased() else { return .refused(.scheme("")) }
        switch scheme {
        case "https": break
        case "http" where allowHTTP: break
        case "http": return .refused(.plainHTTP)
        default: return .refused(.scheme(scheme))
        }
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        if components?.user != nil || components?.password != nil { return .refused(.credentialsInURL) }
        let host = Self.normalizedHost(components?.host ?? "")
        guard !host.isEmpty else { return .refused(.missingHost) }
        let port = components?.port ?? (scheme == "http" ? 80 : 443)
        if let address = IPAddress(host) { return decide(address: address, port: port) }
        if let endpoint = refusedEndpoints.first(where: { $0.host == host && $0.port == port }) {
            return .refused(.refusedEndpoint(endpoint))
        }
        // `2130706433`, `0x7f.1` or `127.1` are not names: the resolver reads them as IPv4
        // addresses (inet_aton's forms), which would slip past the checks on the text.
        if let last = host.split(separator: ".").last,
            last.allSatisfy({ $0.isASCII && $0.isNumber }) || (last.lowercased().hasPrefix("0x") && last.dropFirst(2).allSatisfy(\.isHexDigit))
        {
            return .refused(.numericHost(host))
        }
        return .allowed
    }

    /// The decision for connecting to `resolvedAddress`, one of the addresses the URL's host
    /// resolved to: everything ``decide(url:)`` checks, then the address.
    public func decide(url: URL, resolvedAddress: IPAddress) -> AddressDecision {
        let byURL = decide(url: url)
        guard byURL == .allowed else { return byURL }
        let port = url.port ?? (url.scheme?.lowercased() == "http" ? 80 : 443)
        return decide(address: resolvedAddress, port: port)
    }

    /// ``decide(url:resolvedAddress:)`` for an address as text (what a resolver printed);
    /// text that is not an address is refused.
    public func decide(url: URL, resolvedAddress text: String) -> AddressDecision {
        guard let address = IPAddress(text) else { return .refused(.malformedAddress(text)) }
        return decide(url: url, resolvedAddress: address)
    }

    /// The decision for an address alone (and its port, for the refused endpoints): refused
    /// when it, or the IPv4 address it carries, is in a special range the allow-list does
    /// not cover.
    public func decide(address: IPAddress, port: Int? = nil) -> AddressDecision {
        let judged = address.embeddedIPv4 ?? address
        if let port, let endpoint = refusedEndpoints.first(where: { $0.port == port && IPAddress($0.host).map { $0.embeddedIPv4 ?? $0 } == judged }) {
            return .refused(.refusedEndpoint(endpoint))
        }
        if allowList.contains(where: { $0.contains(address) || $0.contains(judged) }) { return .allowed }
        guard let range = Self.specialRange(containing: judged) else { return .allowed }
        return .refused(.specialRange(address: address, carried: judged == address ? nil : judged, range: range))
    }

    static func normalizedHost(_ host: String) -> String {
        var host = Substring(host.lowercased())
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if host.hasSuffix(".") { host = host.dropLast() }
        return String(host)
    }
}

/// ``AddressPolicy``'s answer.
public enum AddressDecision: Sendable, Equatable, CustomStringConvertible {
    case allowed
    case refused(AddressRefusal)

    public var description: String {
        switch self {
        case .allowed: "allowed"
        case .refused(let refusal): "refused: \(refusal)"
        }
    }
}

/// Why ``AddressPolicy`` refused a URL or an address, in words that name the rule or range.
public enum AddressRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Neither https nor http (`file`, `ftp`, `gopher`…).
    case scheme(String)
    /// http while the policy allows https only.
    case plainHTTP
    /// `user:password@` in the URL.
    case credentialsInURL
    case missingHost
    /// A host the resolver would read as an IPv4 address in a form other than a dotted quad.
    case numericHost(String)
    /// A resolved address that is not an IPv4 or IPv6 address.
    case malformedAddress(String)
    case refusedEndpoint(AddressPolicy.Endpoint)
    /// `address` (or the IPv4 address it carries) is in `range`.
    case specialRange(address: IPAddress, carried: IPAddress?, range: AddressPolicy.SpecialRange)

    public var description: String {
        switch self {
        case .scheme(let scheme): "the scheme '\(scheme)' is not allowed (https, and http where the settings allow it)"
        case .plainHTTP: "plain http is not allowed (https only)"
        case .credentialsInURL: "a URL must not carry a user or password"
        case .missingHost: "the URL has no host"
        case .numericHost(let host): "'\(host)' is a numeric host that is not a dotted-quad IPv4 address"
        case .malformedAddress(let text): "'\(text)' is not an IP address"
        case .refusedEndpoint(let endpoint): "\(endpoint) is one of the broker's own endpoints"
        case .specialRange(let address, let carried?, let range): "\(address) carries \(carried), which is \(range)"
        case .specialRange(let address, nil, let range): "\(address) is \(range)"
        }
    }
}
