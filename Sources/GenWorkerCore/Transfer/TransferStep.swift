import Foundation

/// The `fetch` and `upload` steps' command lines: `genworker transfer --plan P --report R`,
/// run by the supervisor like the generator. Their environment is clean too, but for the
/// store's credentials, which only these steps get (the generator never sees them).
public enum TransferStep {
    /// What a transfer process may inherit from the worker's environment.
    public static let inherited = [
        "PATH", "HOME", "LANG", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
    ]

    /// `owner`: the worker's `GENWORKER_OWNER` token, by which its watchdog (and its next
    /// life) find and kill what it left: a transfer is the worker's child like a generator.
    public static func spec(
        program: String, plan: String, report: String, fetchTimeoutSeconds: Double, owner: String,
        from parent: [String: String] = ProcessInfo.processInfo.environment
    ) -> ProcessSpec {
        var environment = parent.filter { inherited.contains($0.key) }
        environment["GENWORKER_OWNER"] = owner
        return ProcessSpec(
            executable: program,
            arguments: ["transfer", "--plan", plan, "--report", report, "--fetch-timeout", String(fetchTimeoutSeconds)],
            environment: environment)
    }

    /// A video's key in the store: one per attempt, so a run that lost its job (and is
    /// being stopped) never overwrites the winner's video; the result names the key.
    public static func outputKey(prefix: String, id: String, attempt: Int) -> String { "\(prefix)\(id)/\(attempt).mp4" }

    /// A fetched input's file name in the run's folder: the param, and the URL's extension
    /// when it is one of the media's (loaders that look at the name see a familiar one).
    public static func inputFileName(param: String, source: RemoteInput, media: InputRole) -> String {
        let known: [InputRole: [String]] = [
            .image: ["png", "jpg", "jpeg", "webp"], .audio: ["wav", "mp3", "flac", "ogg", "m4a"], .video: ["mp4", "mov", "webm", "mkv"],
        ]
        let path: String
        switch source {
        case .url(let url): path = URLComponents(string: url)?.path ?? ""
        case .s3(_, let key): path = key
        }
        let ext = (path as NSString).pathExtension.lowercased()
        let fallback = ["image": "png", "audio": "wav", "video": "mp4"][media.rawValue]!
        return "\(param).\(known[media]!.contains(ext) ? ext : fallback)"
    }
}
