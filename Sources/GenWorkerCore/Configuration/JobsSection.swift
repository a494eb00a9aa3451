extension WorkerConfiguration {
    public struct JobsSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `jobs.max_body_bytes`: larger job messages are refused.
        public var maxBodyBytes = 1 << 20
        /// `jobs.default_timeout_s`: when a job names none.
        public var defaultTimeoutSeconds = 3600
        /// `jobs.max_timeout_s`: the longest timeout (`timeout_s`) a job may ask for.
        public var maxTimeoutSeconds = 21600
        /// `jobs.lease_s`: how long a job stays its worker's without a renewal in the ledger.
        /// Heartbeats renew every `lease_s / 4`; an owner that cannot renew stops its run at
        /// `lease_s − supervisor.grace_s − lease_s/10`; other workers requeue it after `lease_s`.
        /// A broker outage shorter than the fence costs no run.
        public var leaseSeconds: Double = 120
        /// `jobs.machine_fault_retries`: how many times a job that failed for its machine's
        /// sake (`gpu_error`, `environment`) is given back for another worker instead of
        /// ending failed; the fleet counts them in the ledger. 0: such a job fails at once.
        public var machineFaultRetries = 1

        package static var keys: [ConfigKey<Self>] {
            [
                .number("max_body_bytes", \.maxBodyBytes, 256...(256 << 20)),
                .number("default_timeout_s", \.defaultTimeoutSeconds, 1...(30 * 86400)),
                .number("max_timeout_s", \.maxTimeoutSeconds, 1...(30 * 86400)),
                .seconds("lease_s", \.leaseSeconds),
                .number("machine_fault_retries", \.machineFaultRetries, 0...100),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
