import Logging

extension WorkerConfiguration {
    public struct LogSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `log.format`: `text`, or `json` (one JSON object per line, for log shippers).
        public var format = "text"
        /// `log.level`: trace, debug, info, notice, warning, error, critical.
        public var level = "info"

        package static var keys: [ConfigKey<Self>] {
            [
                .key("format", \.format) { format in
                    guard ["text", "json"].contains(format) else {
                        throw GenWorkerError(.configuration, "log.format must be text or json, not '\(format)'")
                    }
                },
                .key("level", \.level) { level in
                    guard Logger.Level(rawValue: level) != nil else {
                        throw GenWorkerError(.configuration, "log.level must be one of trace, debug, info, notice, warning, error, critical")
                    }
                },
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
