import Foundation

/// Why a message is not a job we can run. `id` is set when one could be read, so a
/// `failed` result can still reach the client.
public struct JobRejection: Error, Sendable, Equatable, CustomStringConvertible {
    public var id: String?
    public var task: String?
    public var message: String
    public var description: String { message }
}

/// Turns job messages into ``JobRequest``s under the worker's rules (protocol v1, docs/protocol.md).
public struct JobValidator: Sendable {
    public static let idPattern = "^[A-Za-z0-9_-]{1,128}$"
    public var servedTasks: Set<WanTask>
    public var inputRoots: [String]
    public var maxBodyBytes: Int
    public var defaultTimeoutSeconds: Int
    public var maxTimeoutSeconds: Int
    /// `inputs.urls`, `inputs.s3_buckets`, `egress.allow_http`: which URLs a job may give.
    public var acceptsInputURLs: Bool
    public var inputBuckets: Set<String>
    public var allowsHTTP: Bool
    /// Whether a signing secret is configured: without one a job's webhook is refused.
    public var acceptsWebhooks: Bool
    /// The `egress` rules, for what a URL's text already says.
    public var egressPolicy: AddressPolicy

    /// The longest URL a job may give.
    public static let maxURLBytes = 8192

    public init(configuration: WorkerConfiguration, acceptsWebhooks: Bool? = nil) {
        servedTasks = Set(configuration.worker.tasks)
        inputRoots = configuration.inputs.roots.map { Self.realPath($0) ?? $0 }
        maxBodyBytes = configuration.jobs.maxBodyBytes
        defaultTimeoutSeconds = configuration.jobs.defaultTimeoutSeconds
        maxTimeoutSeconds = configuration.jobs.maxTimeoutSeconds
        acceptsInputURLs = configuration.inputs.urls
        inputBuckets = Set(configuration.inputs.s3Buckets)
        allowsHTTP = configuration.egress.allowHTTP
        self.acceptsWebhooks = acceptsWebhooks ?? !configuration.webhooks.secretFile.isEmpty
        egressPolicy = AddressPolicy(
            allowHTTP: configuration.egress.allowHTTP, allowList: configuration.egress.allowNetworks.compactMap(IPNetwork.init),
            refusedEndpoints: configuration.brokerEndpoints.compactMap(AddressPolicy.Endpoint.init))
    }

    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128
            && id.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
            }
    }

    /// Validates a job message. `fallbackID` (the AMQP message_id) names the job in the
    /// rejection when the body cannot be read.
    public func validate(body: [UInt8], fallbackID: String? = nil) throws(JobRejection) -> JobRequest {
        var rejection = JobRejection(id: fallbackID.flatMap { Self.isValidID($0) ? $0 : nil }, task: nil, message: "")
        func reject(_ message: String) -> JobRejection {
            rejection.message = message
            return rejection
        }
        guard body.count <= maxBodyBytes else {
            throw reject("the job message is \(body.count) bytes; the limit is \(maxBodyBytes) (jobs.max_body_bytes)")
        }
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: Data(body)) } catch {
            throw reject("the job message is not valid JSON")
        }
        guard case .object(let object) = root else { throw reject("the job message must be a JSON object, not \(root.kindName)") }
        if case .string(let id)? = object["id"], Self.isValidID(id) { rejection.id = id }
        if case .string(let task)? = object["task"], task.utf8.count <= 64 { rejection.task = task }

        let fields = ["id", "task", "params", "timeout_s", "version", "output", "webhook"]
        for key in object.keys.sorted() where !fields.contains(key) {
            throw reject("unknown field '\(String(key.prefix(64)))' (known: \(fields.joined(separator: ", ")))")
        }
        if let version = object["version"], version != .int(1) { throw reject("version must be 1") }
        guard case .string(let id)? = object["id"] else { throw reject("'id' must be a string") }
        guard Self.isValidID(id) else { throw reject("'id' must match \(Self.idPattern)") }
        guard case .string(let taskName)? = object["task"] else { throw reject("'task' must be a string") }
        guard let task = WanTask(rawValue: taskName) else {
            throw reject("unknown task '\(String(taskName.prefix(64)))' (known: \(WanTask.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard servedTasks.contains(task) else { throw reject("this worker does not serve task \(taskName)") }

        var timeoutSeconds = defaultTimeoutSeconds
        if let value = object["timeout_s"] {
            guard case .int(let t) = value, t >= 1, t <= maxTimeoutSeconds else {
                throw reject("'timeout_s' must be a whole number from 1 to \(maxTimeoutSeconds)")
            }
            timeoutSeconds = Int(t)
        }

        var params: [String: JSONValue] = [:]
        switch object["params"] {
        case nil: break
        case .object(let p)?: params = p
        case let other?: throw reject("'params' must be an object, not \(other.kindName)")
        }
        let spec = task.parameters
        for name in task.requiredParameters where params[name] == nil {
            throw reject("params.\(name) is required for \(taskName)")
        }
        let preprocessing = task.preprocesses(givenParameters: Set(params.keys))
        if task == .animate14B {
            if params["src_root_path"] != nil {
                if let extra = ["video_path", "refer_path"].first(where: { params[$0] != nil }) {
                    throw reject(
                        "params.\(extra) and params.src_root_path exclude each other (raw inputs are preprocessed; src_root_path is already preprocessed)"
                    )
                }
            } else if params["video_path"] == nil || params["refer_path"] == nil {
                throw reject("animate-14B needs params.src_root_path, or params.video_path and params.refer_path to preprocess")
            }
        }
        var parameters: [JobParameter] = []
        for name in params.keys.sorted() {
            guard let kind = spec[name] else {
                throw reject(
                    "params.\(String(name.prefix(64))) is not accepted for \(taskName) (accepted: \(spec.keys.sorted().joined(separator: ", ")))")
            }
            if !preprocessing && WanTask.preprocessOnlyParameters.contains(name) {
                throw reject("params.\(name) only applies when animate-14B preprocesses video_path and refer_path")
            }
            do {
                parameters.append(JobParameter(name, try value(kind, params[name]!)))
            } catch {
                throw reject("params.\(name): \(error.message)")
            }
        }
        let output: OutputDestination?
        let webhook: Webhook?
        do {
            output = try object["output"].map(outputDestination)
        } catch { throw reject("output: \(error.message)") }
        do {
            webhook = try object["webhook"].map(self.webhook)
        } catch { throw reject("webhook: \(error.message)") }
        return JobRequest(id: id, task: task, parameters: parameters, timeout: .seconds(timeoutSeconds), output: output, webhook: webhook)
    }

    private func outputDestination(_ value: JSONValue) throws(ParameterError) -> OutputDestination {
        guard case .object(let object) = value else { throw ParameterError(message: "must be an object with put_url") }
        for key in object.keys.sorted() where !["put_url", "headers"].contains(key) {
            throw ParameterError(message: "unknown field '\(String(key.prefix(64)))' (known: put_url, headers)")
        }
        guard case .string(let url)? = object["put_url"] else { throw ParameterError(message: "put_url must be a string") }
        try checkURL(url, what: "put_url")
        var headers: [String: String] = [:]
        switch object["headers"] {
        case nil: break
        case .object(let given)?:
            guard given.count <= 32 else { throw ParameterError(message: "headers: at most 32") }
            for (name, value) in given {
                guard case .string(let text) = value, Self.isHeaderName(name), Self.isHeaderValue(text) else {
                    throw ParameterError(message: "headers: '\(String(name.prefix(64)))' must be a header name with a string value on one line")
                }
                guard !["host", "content-length", "transfer-encoding", "connection"].contains(name.lowercased()) else {
                    throw ParameterError(message: "headers: \(name) is set by the worker")
                }
                headers[name] = text
            }
        case .some: throw ParameterError(message: "headers must be an object of strings")
        }
        return OutputDestination(putURL: url, headers: headers)
    }

    private func webhook(_ value: JSONValue) throws(ParameterError) -> Webhook {
        guard acceptsWebhooks else { throw ParameterError(message: "this worker sends no webhooks (webhooks.secret_file is not set)") }
        guard case .object(let object) = value else { throw ParameterError(message: "must be an object with url") }
        for key in object.keys.sorted() where !["url", "events"].contains(key) {
            throw ParameterError(message: "unknown field '\(String(key.prefix(64)))' (known: url, events)")
        }
        guard case .string(let url)? = object["url"] else { throw ParameterError(message: "url must be a string") }
        try checkURL(url, what: "url")
        var events = Webhook.defaultEvents
        switch object["events"] {
        case nil: break
        case .array(let given)?:
            events = []
            for item in given {
                guard case .string(let name) = item, let kind = JobEventKind(rawValue: name) else {
                    throw ParameterError(
                        message: "events: each must be one of \(JobEventKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                events.insert(kind)
            }
            guard !events.isEmpty else { throw ParameterError(message: "events must name at least one event") }
        case .some: throw ParameterError(message: "events must be a list")
        }
        return Webhook(url: url, events: events)
    }

    /// A URL from a job, by its text alone (where it leads is checked when it is used, on the
    /// resolved address: `egress`).
    private func checkURL(_ url: String, what: String) throws(ParameterError) {
        guard url.utf8.count <= Self.maxURLBytes else { throw ParameterError(message: "\(what) is longer than \(Self.maxURLBytes) bytes") }
        guard url.hasPrefix("https://") || (allowsHTTP && url.hasPrefix("http://")) else {
            throw ParameterError(message: "\(what) must be an https:// URL\(allowsHTTP ? " or http://" : "")")
        }
        guard !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }),
            let components = URLComponents(string: url), let host = components.host, !host.isEmpty
        else { throw ParameterError(message: "\(what) is not a valid URL") }
        guard components.user == nil && components.password == nil else {
            throw ParameterError(message: "\(what) must not carry a user or password")
        }
        // What can be judged before resolving (an address in a forbidden range, the broker):
        // refused now, before any GPU time. Names are judged when used, on their addresses.
        if let parsed = URL(string: url), case .refused(let why) = egressPolicy.decide(url: parsed) {
            throw ParameterError(message: "\(what): \(why) (egress rules)")
        }
    }

    private static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "-_.".utf8.contains(b)
            }
    }

    private static func isHeaderValue(_ value: String) -> Bool {
        value.utf8.count <= 4096 && !value.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// An input param given as a URL: `https://…` (`inputs.urls`) or `s3://bucket/key` (`inputs.s3_buckets`).
    private func remoteInput(_ text: String, media: InputRole) throws(ParameterError) -> JobParameter.Value {
        if text.hasPrefix("s3://") {
            let rest = text.dropFirst("s3://".count)
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else {
                throw ParameterError(message: "must be s3://BUCKET/KEY")
            }
            let bucket = String(rest[..<slash])
            let key = String(rest[rest.index(after: slash)...])
            guard inputBuckets.contains(bucket) else {
                throw ParameterError(
                    message: inputBuckets.isEmpty
                        ? "this worker reads no s3:// inputs (inputs.s3_buckets is empty)"
                        : "bucket \(String(bucket.prefix(64))) is not one this worker reads (inputs.s3_buckets)")
            }
            guard key.utf8.count <= 1024, !key.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw ParameterError(message: "the key must be at most 1024 bytes without control characters")
            }
            // A proxy that normalizes paths would read `a/../b` elsewhere than it was signed for.
            guard !key.hasPrefix("/"), !key.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == "." || $0 == ".." })
            else { throw ParameterError(message: "the key must not start with / nor hold . or .. segments") }
            return .remote(.s3(bucket: bucket, key: key), media)
        }
        guard acceptsInputURLs else { throw ParameterError(message: "this worker accepts no input URLs (inputs.urls is off)") }
        try checkURL(text, what: "the URL")
        return .remote(.url(text), media)
    }

    package struct ParameterError: Error { let message: String }

    private func value(_ kind: WanParameter, _ value: JSONValue) throws(ParameterError) -> JobParameter.Value {
        switch kind {
        case .text:
            guard case .string(let s) = value, !s.isEmpty else { throw ParameterError(message: "must be a non-empty string") }
            guard s.count <= 20_000 else { throw ParameterError(message: "is longer than 20000 characters") }
            guard !s.utf8.contains(0) else { throw ParameterError(message: "must not contain NUL bytes") }
            return .text(s)
        case .integer(let range):
            guard case .int(let i) = value, range.contains(i) else {
                throw ParameterError(message: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return .integer(i)
        case .number(let range):
            let d: Double
            switch value {
            case .int(let i): d = Double(i)
            case .double(let x): d = x
            default: throw ParameterError(message: "must be a number")
            }
            guard d.isFinite, range.contains(d) else { throw ParameterError(message: "must be from \(range.lowerBound) to \(range.upperBound)") }
            return .number(d)
        case .choice(let choices):
            guard case .string(let s) = value, choices.contains(s) else {
                throw ParameterError(message: "must be one of \(choices.joined(separator: ", "))")
            }
            return .text(s)
        case .frameCount:
            guard case .int(let n) = value, n >= 5, n <= 1001, n % 4 == 1 else {
                throw ParameterError(message: "must be of the form 4n+1, from 5 to 1001 (e.g. 81)")
            }
            return .integer(n)
        case .multipleOf4(let range):
            guard case .int(let n) = value, range.contains(n), n % 4 == 0 else {
                throw ParameterError(message: "must be a multiple of 4 from \(range.lowerBound) to \(range.upperBound)")
            }
            return .integer(n)
        case .flag:
            guard case .bool(let b) = value else { throw ParameterError(message: "must be true or false") }
            return .flag(b)
        case .inputFile(let media):
            guard case .string(let text) = value, !text.isEmpty else { throw ParameterError(message: "must be a path or a URL") }
            if text.hasPrefix("s3://") || text.hasPrefix("https://") || text.hasPrefix("http://") {
                return try remoteInput(text, media: media)
            }
            guard text.utf8.count <= 4096 else { throw ParameterError(message: "must be a path") }
            return .path(try resolveInput(text, directory: false))
        case .inputDirectory:
            guard case .string(let path) = value, !path.isEmpty, path.utf8.count <= 4096 else {
                throw ParameterError(message: "must be a path")
            }
            guard !path.contains("://") else { throw ParameterError(message: "must be a directory path (a folder cannot be given by URL)") }
            return .path(try resolveInput(path, directory: true))
        }
    }

    /// The real path of an input, which must exist and lie under an input root. Symlinks are
    /// followed before the check, so a link pointing out of the roots is refused.
    private func resolveInput(_ path: String, directory: Bool) throws(ParameterError) -> String {
        guard !path.utf8.contains(0) else { throw ParameterError(message: "must not contain NUL bytes") }
        guard path.hasPrefix("/") else { throw ParameterError(message: "must be an absolute path") }
        guard !inputRoots.isEmpty else { throw ParameterError(message: "this worker accepts no input files (inputs.roots is empty)") }
        guard let real = Self.realPath(path) else { throw ParameterError(message: "does not exist: \(path)") }
        guard inputRoots.contains(where: { real == $0 || real.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            throw ParameterError(message: "\(path) is outside the input roots")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue == directory else {
            throw ParameterError(message: "\(path) is not a \(directory ? "directory" : "file")")
        }
        return real
    }

    package static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
