extension WorkerConfiguration {
    /// `egress`: where URLs taken from job messages may lead (input URLs, a job's own output
    /// URL, webhooks). A GPU box reaches what its clients cannot (cloud metadata at
    /// 169.254.169.254, the broker, private services): such addresses are refused, after
    /// resolving the name and at every redirect, unless allowed here.
    public struct EgressSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `egress.allow_http`: plain `http://` URLs (default: `https://` only).
        public var allowHTTP = false
        /// `egress.allow_networks`: addresses or CIDR blocks that may be reached although
        /// private, loopback or link-local (e.g. `10.20.0.0/16` for an internal store).
        public var allowNetworks: [String] = []
        /// `egress.max_redirects`: redirects followed, each checked again.
        public var maxRedirects = 5

        package static var keys: [ConfigKey<Self>] {
            [
                .key("allow_http", \.allowHTTP),
                .key("allow_networks", \.allowNetworks),
                .number("max_redirects", \.maxRedirects, 0...20),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
