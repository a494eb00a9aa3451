extension WorkerConfiguration {
    public struct CancelSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `cancel.authorize`: a cancel counts only from the job's submitter or an admin (AMQP `user_id`, checked by the broker).
        public var authorize = false
        /// `cancel.admins`: broker users who may cancel any job.
        public var admins: [String] = []

        package static var keys: [ConfigKey<Self>] { [.key("authorize", \.authorize), .key("admins", \.admins)] }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
