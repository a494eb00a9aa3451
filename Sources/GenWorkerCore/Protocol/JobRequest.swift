/// A job as validated from a message: ready to run. Its parameters are typed values;
/// generate.py's command line is built from them in Wan/ (``WanCommand``).
public struct JobRequest: Sendable, Equatable {
    public var id: String
    public var task: WanTask
    /// The job's params, checked against the task's table, sorted by name.
    public var parameters: [JobParameter]
    public var timeout: Duration
    /// Where the video goes instead of the worker's own store: a URL the client presigned.
    public var output: OutputDestination?
    /// Where the job's events are POSTed, signed (`webhooks`).
    public var webhook: Webhook?

    public init(
        id: String, task: WanTask, parameters: [JobParameter], timeout: Duration, output: OutputDestination? = nil, webhook: Webhook? = nil
    ) {
        self.id = id
        self.task = task
        self.parameters = parameters
        self.timeout = timeout
        self.output = output
        self.webhook = webhook
    }

    /// The job with each fetched input replaced by its local copy (`paths` by param name).
    public func localized(_ paths: [String: String]) -> JobRequest {
        var job = self
        job.parameters = parameters.map { parameter in
            guard case .remote = parameter.value, let path = paths[parameter.name] else { return parameter }
            return JobParameter(parameter.name, .path(path))
        }
        return job
    }

    /// The inputs to fetch before the first step, by param name.
    public var remoteInputs: [(name: String, input: RemoteInput, media: InputRole)] {
        parameters.compactMap { parameter in
            guard case .remote(let input, let media) = parameter.value else { return nil }
            return (parameter.name, input, media)
        }
    }

    /// The job's free texts (its prompt, …): what its generator's log may repeat verbatim.
    public var texts: [String] {
        parameters.compactMap { if case .text(let text) = $0.value { text } else { nil } }
    }

    /// The value of the param `name`, if the job set it.
    public func parameter(_ name: String) -> JobParameter.Value? { parameters.first { $0.name == name }?.value }
}

/// One validated param of a job.
public struct JobParameter: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int64)
        case number(Double)
        case flag(Bool)
        /// An input file or directory, resolved (symlinks followed) under `inputs.roots`.
        case path(String)
        /// An input file to fetch first (`JobStep.fetch`); the generator gets the local copy.
        case remote(RemoteInput, InputRole)
    }

    public var name: String
    public var value: Value

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
}

/// An input given by URL.
public enum RemoteInput: Sendable, Equatable, Codable {
    /// An `https://` (or, with `egress.allow_http`, `http://`) URL: presigned GETs included.
    case url(String)
    /// An object of the worker's store, read with the worker's credentials (`inputs.s3_buckets`).
    case s3(bucket: String, key: String)

    /// As the job gave it; a URL without its query (a presigned GET's signature is a secret).
    public var redacted: String {
        switch self {
        case .url(let url): return url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        case .s3(let bucket, let key): return "s3://\(bucket)/\(key)"
        }
    }
}

/// A job's own destination for its video: a URL its client presigned for a PUT (boto3's
/// `generate_presigned_url("put_object", ...)`, GCS and Azure equivalents).
public struct OutputDestination: Sendable, Equatable, Codable {
    public var putURL: String
    /// Headers the PUT must carry because they were signed with it (e.g. `Content-Type`).
    public var headers: [String: String]

    public init(putURL: String, headers: [String: String] = [:]) {
        self.putURL = putURL
        self.headers = headers
    }

    enum CodingKeys: String, CodingKey {
        case putURL = "put_url"
        case headers
    }
}

/// A job's webhook: where its events are POSTed, and which.
public struct Webhook: Sendable, Equatable, Codable {
    public var url: String
    /// Which events go there; default the terminal ones (Replicate's `webhook_events_filter`).
    public var events: Set<JobEventKind>

    public static let defaultEvents: Set<JobEventKind> = [.completed, .failed, .cancelled]

    public init(url: String, events: Set<JobEventKind> = Webhook.defaultEvents) {
        self.url = url
        self.events = events
    }
}
