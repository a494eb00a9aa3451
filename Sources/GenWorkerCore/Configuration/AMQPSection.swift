import Foundation

extension WorkerConfiguration {
    public struct AMQPSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `amqp.url` (env `GENWORKER_AMQP_URL`): `amqp[s]://user:password@host:port/vhost?heartbeat=30`.
        /// The one-node shorthand of `amqp.urls`.
        public var url = "amqp://guest:guest@127.0.0.1:5672/"
        /// `amqp.urls`: the nodes of a cluster. The worker connects to the first that answers
        /// and, when the connection is lost, tries the next ones in turn. Default none: `amqp.url`.
        public var urls: [String] = []
        /// `amqp.reconnect_max_s`: longest wait between reconnect attempts (backoff doubles from 0.25 s).
        public var reconnectMaxSeconds: Double = 30
        /// `amqp.confirm_timeout_s`: how long a result publish waits for the broker's confirm.
        public var confirmTimeoutSeconds: Double = 30

        package static var keys: [ConfigKey<Self>] {
            [
                .key("url", \.url),
                .key("urls", \.urls),
                .seconds("reconnect_max_s", \.reconnectMaxSeconds),
                .seconds("confirm_timeout_s", \.confirmTimeoutSeconds),
            ]
        }

        package func check(_ reader: ConfigReader) throws {
            if try reader.has("url"), try reader.has("urls") {
                throw GenWorkerError(.configuration, "amqp: set amqp.url (one node) or amqp.urls (a cluster), not both")
            }
        }

        public var reconnectMax: Duration { .seconds(reconnectMaxSeconds) }
        public var confirmTimeout: Duration { .seconds(confirmTimeoutSeconds) }

        /// The nodes to try, in order: `amqp.urls`, else `amqp.url`.
        public var endpoints: [String] { urls.isEmpty ? [url] : urls }

        /// Sets the nodes from one string, as the environment and `--url` give them: one URL,
        /// or several separated by commas.
        public mutating func setEndpoints(_ text: String) {
            let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard let first = parts.first else { return }
            url = first
            urls = parts.count > 1 ? parts : []
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
