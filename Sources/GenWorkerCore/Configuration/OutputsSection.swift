extension WorkerConfiguration {
    public struct OutputsSection: Sendable, Equatable, Decodable, ConfigSection {
        /// Where a finished video is handed over.
        public enum Store: String, Sendable, Equatable, Decodable {
            /// It stays in `outputs.dir` (a shared filesystem, or clients on the same machine).
            case local
            /// It is uploaded to `storage` under `outputs.prefix`, then removed from the disk.
            case s3
        }

        /// Which URL a result names for a stored video.
        public enum URLKind: String, Sendable, Equatable, Codable {
            /// A presigned GET, valid for `outputs.url_expires_s`.
            case presigned
            /// `outputs.public_base_url` followed by the key (a public bucket or a CDN).
            case `public`
            /// None: clients read `output_uri` with credentials of their own.
            case none
        }

        /// `outputs.dir`: videos are made here (each attempt in a folder of its own) and, with
        /// `store: local`, kept here as `<job id>.mp4`.
        public var dir = "/var/lib/genworker/outputs"
        /// `outputs.store`: `local` or `s3` (needs `storage`).
        public var store = Store.local
        /// `outputs.prefix`: with `store: s3`, a video's key is `<prefix><job id>/<attempt>.mp4`:
        /// one key per attempt, so a run that lost its job never overwrites the winner's video.
        public var prefix = "genworker/"
        /// `outputs.url`: `presigned`, `public` or `none`.
        public var url = URLKind.presigned
        /// `outputs.url_expires_s`: a presigned GET's lifetime (SigV4 allows 1 s to 7 days).
        public var urlExpiresSeconds = 86400
        /// `outputs.public_base_url`: with `url: public`, e.g. `https://cdn.example.com/videos/`.
        public var publicBaseURL = ""
        /// `outputs.keep_local`: keep the file in `outputs.dir` after a confirmed upload.
        public var keepLocal = false
        /// `outputs.min_free_mb`: below this much free space in `outputs.dir` the worker takes
        /// no new jobs (they stay queued for other workers); 0: no floor.
        public var minFreeMB = 0

        package static var keys: [ConfigKey<Self>] {
            [
                .key("dir", \.dir),
                .key("store", \.store),
                .key("prefix", \.prefix),
                .key("url", \.url),
                .number("url_expires_s", \.urlExpiresSeconds, 1...604_800),
                .key("public_base_url", \.publicBaseURL),
                .key("keep_local", \.keepLocal),
                .number("min_free_mb", \.minFreeMB, 0...100_000_000),
            ]
        }

        package func check(_ reader: ConfigReader) throws {
            if url == .public && store == .s3 && publicBaseURL.isEmpty {
                throw GenWorkerError(.configuration, "outputs.url: public needs outputs.public_base_url")
            }
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
