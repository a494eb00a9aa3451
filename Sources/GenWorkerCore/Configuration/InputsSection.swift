extension WorkerConfiguration {
    public struct InputsSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `inputs.roots`: job input paths must resolve (symlinks followed) under one of these. Default none.
        public var roots: [String] = []
        /// `inputs.urls`: inputs may be `https://` URLs (presigned GETs included), fetched
        /// under the `egress` rules before the generator starts.
        public var urls = false
        /// `inputs.s3_buckets`: inputs may be `s3://BUCKET/KEY` for these buckets, read with the
        /// worker's own credentials (so only buckets every submitter may read). Default none.
        public var s3Buckets: [String] = []
        /// `inputs.max_mb`: a fetched input larger than this fails the job.
        public var maxMB = 1024
        /// `inputs.fetch_timeout_s`: all of a job's fetches together, within its `timeout_s`.
        public var fetchTimeoutSeconds: Double = 600

        package static var keys: [ConfigKey<Self>] {
            [
                .key("roots", \.roots),
                .key("urls", \.urls),
                .key("s3_buckets", \.s3Buckets),
                .number("max_mb", \.maxMB, 1...1_000_000),
                .seconds("fetch_timeout_s", \.fetchTimeoutSeconds),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
