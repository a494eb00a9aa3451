extension WorkerConfiguration {
    public struct OutputsSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `outputs.dir`: videos land here as `<job id>.mp4`.
        public var dir = "/var/lib/genworker/outputs"

        package static var keys: [ConfigKey<Self>] { [.key("dir", \.dir)] }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
