extension WorkerConfiguration {
    public struct SupervisorSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `supervisor.grace_s`: SIGTERM → SIGKILL; torchrun needs about 30 s to stop its workers.
        public var graceSeconds: Double = 30
        /// `supervisor.poll_ms`: deadline checks; a cancel wakes the supervisor at once regardless.
        public var pollMilliseconds = 100
        /// `supervisor.log_tail_lines`: lines of generator output in each result.
        public var logTailLines = 50
        /// `supervisor.watchdog`: the `genworker-watchdog` program. Default: next to the executable.
        public var watchdog: String?

        package static var keys: [ConfigKey<Self>] {
            [
                .seconds("grace_s", \.graceSeconds),
                .number("poll_ms", \.pollMilliseconds, 1...60000),
                .number("log_tail_lines", \.logTailLines, 0...10000),
                .key("watchdog", \.watchdog),
            ]
        }

        public var grace: Duration { .seconds(graceSeconds) }
        public var pollInterval: Duration { .milliseconds(pollMilliseconds) }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
