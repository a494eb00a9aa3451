import Foundation

/// Where and how to connect. Build it from an `amqp://` or `amqps://` URL
/// (``init(url:)``) or field by field.
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    public var host: String = "127.0.0.1"
    /// Default: 5672, or 5671 for TLS.
    public var port: Int = 5672
    public var user: String = "guest"
    public var password: String = "guest"
    public var virtualHost: String = "/"
    /// Heartbeat interval asked of the broker; the lower of ours and the broker's wins. `.zero` turns heartbeats off. Default 30 s.
    public var heartbeat: Duration = .seconds(30)
    /// Shown in the management UI and `rabbitmqctl list_connections`. Default none.
    public var connectionName: String?
    /// TCP connect plus AMQP handshake. Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// How long a synchronous method (declare, bind, qos, ...) may wait for its reply. Default 30 s.
    public var rpcTimeout: Duration = .seconds(30)
    /// The longest a single socket send may block before the connection is
    /// declared dead (rabbitmq-c 0.11's publish can otherwise block forever). Default 10 s.
    public var sendTimeout: Duration = .seconds(10)
    /// Largest frame we accept. Default 131072 bytes, RabbitMQ's own default.
    public var frameMax: Int = 131_072
    /// TLS settings; `nil` means plain TCP.
    public var tls: AMQPTLSConfiguration?

    public init() {}

    /// The URL with the password replaced by `***`: safe to log.
    public var description: String {
        let scheme = tls == nil ? "amqp" : "amqps"
        let vhost = virtualHost.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? ""
        return "\(scheme)://\(user):***@\(host):\(port)/\(vhost)"
    }
}

/// TLS for `amqps://`. Peer and hostname verification are on by default.
public struct AMQPTLSConfiguration: Sendable {
    /// PEM file of the CA(s) that sign the broker's certificate. Without one, nothing can be verified.
    public var caCertificateFile: String?
    /// PEM client certificate and key, for brokers that ask for one.
    public var certificateFile: String?
    public var keyFile: String?
    /// Check the broker's certificate chain. Default true.
    public var verifyPeer: Bool = true
    /// Check that the certificate names the host we connect to. Default true.
    public var verifyHostname: Bool = true

    public init(
        caCertificateFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
        verifyPeer: Bool = true, verifyHostname: Bool = true
    ) {
        self.caCertificateFile = caCertificateFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.verifyHostname = verifyHostname
    }
}

extension AMQPConfiguration {
    /// Parses `amqp[s]://user:password@host:port/vhost?query` as RabbitMQ's URI spec
    /// describes it. The vhost is percent-decoded (`%2f` is `/`); an empty path means `/`.
    /// Query keys: `heartbeat` (s), `connection_timeout` (ms), `connection_name`, `frame_max`,
    /// and for TLS `cacertfile`, `certfile`, `keyfile`, `verify` (`verify_peer`|`verify_none`),
    /// `verify_hostname` (`true`|`false`).
    public init(url: String) throws(AMQPError) {
        self.init()
        // Never echo the URL itself: it may hold a password.
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw AMQPError(.invalidURL, "not a URL of the form amqp://user:password@host:port/vhost")
        }
        switch scheme {
        case "amqp": port = 5672
        case "amqps":
            port = 5671
            tls = AMQPTLSConfiguration()
        default: throw AMQPError(.invalidURL, "scheme must be amqp or amqps, not '\(scheme)'")
        }
        if let h = components.host, !h.isEmpty { host = h }
        if let p = components.port {
            guard (1...65535).contains(p) else { throw AMQPError(.invalidURL, "port \(p) is out of range") }
            port = p
        }
        if let u = components.user { user = u.removingPercentEncoding ?? u }
        if let p = components.password { password = p.removingPercentEncoding ?? p }
        let path = components.percentEncodedPath
        if path.isEmpty || path == "/" {
            virtualHost = "/"
        } else {
            let raw = String(path.dropFirst())
            guard !raw.contains("/") else { throw AMQPError(.invalidURL, "the vhost must be one path segment (encode '/' as %2f)") }
            virtualHost = raw.removingPercentEncoding ?? raw
        }
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            func number() throws(AMQPError) -> Int {
                guard let n = Int(value), n >= 0 else { throw AMQPError(.invalidURL, "query parameter \(item.name) must be a whole number ≥ 0") }
                return n
            }
            func flag() throws(AMQPError) -> Bool {
                switch value.lowercased() {
                case "true", "1", "yes": return true
                case "false", "0", "no": return false
                default: throw AMQPError(.invalidURL, "query parameter \(item.name) must be true or false")
                }
            }
            switch item.name {
            case "heartbeat": heartbeat = .seconds(try number())
            case "connection_timeout": connectTimeout = .milliseconds(try number())
            case "connection_name": connectionName = value
            case "frame_max": frameMax = try number()
            case "cacertfile", "certfile", "keyfile", "verify", "verify_hostname":
                guard tls != nil else { throw AMQPError(.invalidURL, "\(item.name) needs an amqps:// URL") }
                switch item.name {
                case "cacertfile": tls?.caCertificateFile = value
                case "certfile": tls?.certificateFile = value
                case "keyfile": tls?.keyFile = value
                case "verify_hostname": tls?.verifyHostname = try flag()
                default:
                    switch value {
                    case "verify_peer": tls?.verifyPeer = true
                    case "verify_none":
                        tls?.verifyPeer = false
                        tls?.verifyHostname = false
                    default: throw AMQPError(.invalidURL, "verify must be verify_peer or verify_none")
                    }
                }
            default:
                throw AMQPError(.invalidURL, "unknown query parameter '\(item.name)'")
            }
        }
    }
}
