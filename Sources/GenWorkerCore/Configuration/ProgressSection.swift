extension WorkerConfiguration {
    public struct ProgressSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `progress.interval_ms`: at most one progress event per job per interval (a new phase goes out at once).
        public var intervalMilliseconds = 1000

        package static var keys: [ConfigKey<Self>] { [.number("interval_ms", \.intervalMilliseconds, 0...3_600_000)] }

        public var interval: Duration { .milliseconds(intervalMilliseconds) }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
