extension WorkerConfiguration {
    /// `storage`: the S3-compatible object store (AWS S3, Google Cloud Storage's XML API,
    /// MinIO, SeaweedFS) that `outputs.store: s3` uploads to and `s3://` inputs come from.
    /// Credentials are never configured here: they come from the standard AWS environment
    /// variables or a credentials file (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`).
    public struct StorageSection: Sendable, Equatable, Decodable, ConfigSection {
        /// How a bucket is named in a request.
        public enum Addressing: String, Sendable, Equatable, Decodable {
            /// `https://BUCKET.endpoint/KEY`: AWS's default, needed for new AWS buckets.
            case virtual
            /// `https://endpoint/BUCKET/KEY`: MinIO, SeaweedFS, most private stores.
            case path
        }

        /// `storage.endpoint`: e.g. `https://s3.eu-west-1.amazonaws.com`, `https://storage.googleapis.com`,
        /// `http://minio.internal:9000`. Empty: no object store.
        public var endpoint = ""
        /// `storage.region`: signs requests (SigV4); GCS and MinIO accept `us-east-1`, or `auto`.
        public var region = "us-east-1"
        /// `storage.bucket`: where `outputs.store: s3` puts videos.
        public var bucket = ""
        /// `storage.addressing`: `virtual` or `path`.
        public var addressing = Addressing.virtual
        /// `storage.profile`: the credentials file's profile. Default: `AWS_PROFILE`, else `default`.
        public var profile = ""
        /// `storage.attempts`: tries of each request on a 5xx, a 429 or a connection error, with backoff.
        public var attempts = 5
        /// `storage.multipart_threshold_mb`: larger videos go up in parts (one part in memory at a time).
        public var multipartThresholdMB = 64
        /// `storage.part_size_mb`: each part but the last (S3's minimum is 5).
        public var partSizeMB = 16

        package static var keys: [ConfigKey<Self>] {
            [
                .key("endpoint", \.endpoint) { endpoint in
                    guard endpoint.hasPrefix("https://") || endpoint.hasPrefix("http://") else {
                        throw GenWorkerError(.configuration, "storage.endpoint must be an http:// or https:// URL")
                    }
                },
                .key("region", \.region),
                .key("bucket", \.bucket),
                .key("addressing", \.addressing),
                .key("profile", \.profile),
                .number("attempts", \.attempts, 1...20),
                .number("multipart_threshold_mb", \.multipartThresholdMB, 5...5_000_000),
                .number("part_size_mb", \.partSizeMB, 5...5000),
            ]
        }

        /// Whether an object store is configured.
        public var isConfigured: Bool { !endpoint.isEmpty }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
