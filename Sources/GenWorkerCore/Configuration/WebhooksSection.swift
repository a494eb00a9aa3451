extension WorkerConfiguration {
    /// `webhooks`: jobs that carry a `webhook` get their events POSTed there, signed the
    /// Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    public struct WebhooksSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `webhooks.secret_file`: a file holding the signing secret (`whsec_` and base64);
        /// `GENWORKER_WEBHOOK_SECRET` overrides it. No secret: jobs with a webhook are refused.
        public var secretFile = ""
        /// `webhooks.timeout_s`: one delivery attempt.
        public var timeoutSeconds: Double = 10
        /// `webhooks.retry_for_s`: a failing receiver is retried, with backoff, this long.
        public var retryForSeconds: Double = 600

        package static var keys: [ConfigKey<Self>] {
            [
                .key("secret_file", \.secretFile),
                .seconds("timeout_s", \.timeoutSeconds),
                .seconds("retry_for_s", \.retryForSeconds),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
