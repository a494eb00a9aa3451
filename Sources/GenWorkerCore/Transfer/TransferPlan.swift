/// What a `genworker transfer` process is asked to do for one step of a job, written by the
/// worker into the run's folder as JSON: the inputs to fetch (`JobStep.fetch`) or the video to
/// upload (`JobStep.upload`), with the store and the egress rules it must keep. Transfers run
/// as supervised child processes, like the generator: a cancel or the job's timeout stops them
/// the same way, and the worker's own process holds no HTTP client for them.
public struct TransferPlan: Sendable, Equatable, Codable {
    public struct Fetch: Sendable, Equatable, Codable {
        /// The job's param (for messages: "params.image: …").
        public var param: String
        public var source: RemoteInput
        public var media: InputRole
        /// Where the file goes (inside the run's folder).
        public var destination: String

        public init(param: String, source: RemoteInput, media: InputRole, destination: String) {
            self.param = param
            self.source = source
            self.media = media
            self.destination = destination
        }
    }

    public enum UploadTarget: Sendable, Equatable, Codable {
        /// The worker's store (`storage`), at this key; the report names a URL as `outputs.url` says.
        case store(key: String)
        /// The job's own presigned PUT URL, with the headers signed with it.
        case url(OutputDestination)
    }

    public struct Upload: Sendable, Equatable, Codable {
        public var file: String
        public var target: UploadTarget

        public init(file: String, target: UploadTarget) {
            self.file = file
            self.target = target
        }
    }

    /// The object store's settings (`storage`, `outputs.url*`), without credentials: the
    /// transfer process reads those from the environment or the credentials file itself.
    public struct Store: Sendable, Equatable, Codable {
        public var endpoint: String
        public var region: String
        public var bucket: String
        public var pathStyle: Bool
        public var profile: String
        public var attempts: Int
        public var multipartThresholdBytes: Int64
        public var partSizeBytes: Int64
        public var url: WorkerConfiguration.OutputsSection.URLKind
        public var urlExpiresSeconds: Int
        public var publicBaseURL: String
    }

    /// Where URLs from the job may lead (`egress`), and the endpoints always refused (the broker's).
    public struct Egress: Sendable, Equatable, Codable {
        public var allowHTTP: Bool
        public var allowNetworks: [String]
        public var maxRedirects: Int
        public var refusedEndpoints: [String]
    }

    public var job: String
    public var fetches: [Fetch] = []
    public var upload: Upload?
    public var store: Store?
    public var egress: Egress
    /// `inputs.max_mb` in bytes: each fetched file's bound.
    public var maxInputBytes: Int64
    /// Tries of each request on a 5xx, a 429 or a connection error.
    public var attempts: Int

    public init(job: String, configuration: WorkerConfiguration) {
        self.job = job
        let storage = configuration.storage
        if storage.isConfigured {
            store = Store(
                endpoint: storage.endpoint, region: storage.region, bucket: storage.bucket, pathStyle: storage.addressing == .path,
                profile: storage.profile, attempts: storage.attempts,
                multipartThresholdBytes: Int64(storage.multipartThresholdMB) << 20, partSizeBytes: Int64(storage.partSizeMB) << 20,
                url: configuration.outputs.url, urlExpiresSeconds: configuration.outputs.urlExpiresSeconds,
                publicBaseURL: configuration.outputs.publicBaseURL)
        }
        egress = Egress(
            allowHTTP: configuration.egress.allowHTTP, allowNetworks: configuration.egress.allowNetworks,
            maxRedirects: configuration.egress.maxRedirects, refusedEndpoints: configuration.brokerEndpoints)
        maxInputBytes = Int64(configuration.inputs.maxMB) << 20
        attempts = storage.attempts
    }
}

/// What a `genworker transfer` process reports back (JSON, beside the plan) when it succeeds.
public struct TransferReport: Sendable, Equatable, Codable {
    public struct Stored: Sendable, Equatable, Codable {
        public var uri: String
        public var url: String?
        public var bytes: Int64
        public var sha256: String

        public init(uri: String, url: String?, bytes: Int64, sha256: String) {
            self.uri = uri
            self.url = url
            self.bytes = bytes
            self.sha256 = sha256
        }
    }

    /// Each fetched input: param → bytes.
    public var fetched: [String: Int64] = [:]
    public var stored: Stored?

    public init() {}
}

/// How a `genworker transfer` process exits: the worker reads the code as the step's outcome.
public enum TransferExit: Int32, Sendable {
    case done = 0
    /// A fetched input cannot be used (refused, missing, too large, wrong kind): `invalid_input`.
    case invalidInput = 65
    /// The store or the job's URL did not take the video: `upload_failed`.
    case uploadFailed = 69
    /// The plan could not be read (a worker bug): `exit_code`.
    case badPlan = 64
    /// A fetch failed for a reason that is not the input's (the store is down, no credentials,
    /// the disk): `exit_code`, with the message naming what.
    case fetchFailed = 75
}
