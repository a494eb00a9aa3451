extension WorkerConfiguration {
    public struct ShutdownSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `shutdown.mode`: on SIGTERM/SIGINT, `drain` (finish running jobs) or `requeue` (stop them, give them back).
        public var mode: ShutdownMode = .drain
        /// `shutdown.drain_timeout_s`: a drain longer than this requeues what still runs.
        public var drainTimeoutSeconds: Double = 1800

        package static var keys: [ConfigKey<Self>] {
            [
                .key("mode", \.mode, as: String.self) { name in
                    guard let mode = ShutdownMode(rawValue: name) else {
                        throw GenWorkerError(.configuration, "shutdown.mode must be drain or requeue, not '\(name)'")
                    }
                    return mode
                },
                .seconds("drain_timeout_s", \.drainTimeoutSeconds),
            ]
        }

        public var drainTimeout: Duration { .seconds(drainTimeoutSeconds) }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
