extension WorkerConfiguration {
    public struct MetricsSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `metrics.enabled`: serve /metrics, /healthz, /readyz.
        public var enabled = true
        /// `metrics.address`: `::` listens on every IPv6 and IPv4 address; `0.0.0.0` on IPv4 only.
        public var address = "::"
        /// `metrics.port`: 0 picks a free port.
        public var port = 9464

        package static var keys: [ConfigKey<Self>] {
            [.key("enabled", \.enabled), .key("address", \.address), .number("port", \.port, 0...65535)]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
