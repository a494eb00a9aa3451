extension WorkerConfiguration {
    public struct DashboardSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `dashboard.enabled`: also serve the dashboard from inside `genworker run`
        /// (`genworker dashboard` serves it on its own either way).
        public var enabled = false
        /// `dashboard.address`: loopback by default; the dashboard is off the network until you say so.
        public var address = "127.0.0.1"
        /// `dashboard.port`: 0 picks a free port (logged).
        public var port = 8080
        /// `dashboard.users`: user name → bcrypt hash (`genworker hash-password`). Without
        /// users the dashboard is read-only; cancel and submit need a user (HTTP basic auth).
        public var users: [String: String] = [:]
        /// `dashboard.admins`: dashboard users who may cancel any job (others: the jobs they submitted).
        public var admins: [String] = []
        /// `dashboard.outputs_dir`: where the videos are, seen from the dashboard; when set, a job's page plays its video.
        public var outputsDir: String?
        /// `dashboard.max_jobs`: the most jobs kept in memory (the oldest ended ones go first).
        public var maxJobs = 100_000
        /// `dashboard.offline_after_s`: a worker silent this long is shown offline ...
        public var offlineAfterSeconds: Double = 90
        /// `dashboard.drop_after_s`: ... and this long, dropped from the list.
        public var dropAfterSeconds: Double = 3600

        package static var keys: [ConfigKey<Self>] {
            [
                .key("enabled", \.enabled),
                .key("address", \.address),
                .number("port", \.port, 0...65535),
                .key("users", \.users) { users in
                    for (user, hash) in users where !hash.hasPrefix("$2") {
                        throw GenWorkerError(
                            .configuration, "dashboard.users.\(user) must be a bcrypt hash (genworker hash-password), not a password")
                    }
                },
                .key("admins", \.admins),
                .key("outputs_dir", \.outputsDir),
                .number("max_jobs", \.maxJobs, 100...10_000_000),
                .seconds("offline_after_s", \.offlineAfterSeconds),
                .seconds("drop_after_s", \.dropAfterSeconds),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
