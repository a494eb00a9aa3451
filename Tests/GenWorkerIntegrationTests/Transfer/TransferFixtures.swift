import Crypto
import Foundation
import GenWorkerCore
import TestSupport
import Transfer
import XCTest

/// The transfer tests' world: the private SeaweedFS (scripts/s3.sh, started by `make test`
/// and CI), a real HTTP fixture server (Tests/http/fixture.py), and plans as the worker
/// writes them. Like the broker, a missing S3 server fails the tests, never skips them.
final class TransferWorld {
    let root: URL
    let fixture: HTTPFixture

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent(TestBroker.uniqueName("transfer"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("files"), withIntermediateDirectories: true)
        fixture = try HTTPFixture(record: root.appendingPathComponent("record.jsonl").path, files: root.appendingPathComponent("files").path)
    }

    func tearDown() {
        fixture.stop()
        try? FileManager.default.removeItem(at: root)
    }

    /// A configuration whose store is the private SeaweedFS and whose egress rules let the
    /// tests reach 127.0.0.1 over http (the fixture, the store's presigned URLs).
    func configuration(_ configure: (inout WorkerConfiguration) -> Void = { _ in }) -> WorkerConfiguration {
        var c = WorkerConfiguration()
        c.amqp.url = TestBroker.url
        c.storage.endpoint = TestS3.url
        c.storage.bucket = TestS3.bucket
        c.storage.addressing = .path
        c.storage.attempts = 2
        c.egress.allowHTTP = true
        c.egress.allowNetworks = ["127.0.0.1/32"]
        configure(&c)
        return c
    }

    func file(_ name: String, bytes: Int, png: Bool = false) throws -> String {
        let path = root.appendingPathComponent(name).path
        var data = [UInt8](repeating: 0, count: bytes)
        for i in stride(from: 0, to: bytes, by: 4096) { data[i] = UInt8.random(in: 0...255) }
        if png { data.replaceSubrange(0..<8, with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) }
        FileManager.default.createFile(atPath: path, contents: Data(data))
        return path
    }

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    func run(_ plan: TransferPlan, env: [String: String] = TestS3.environment) async throws(TransferError) -> TransferReport {
        try await TransferRun(plan: plan, environment: env, fetchTimeoutSeconds: 30, logger: .init(label: "test")).run()
    }

    /// A presigned URL of the private store, made with the test credentials.
    func presigned(_ method: String, key: String, expires: Int = 600) -> String {
        let signer = SigV4Signer(credentials: TestS3.credentials, region: "us-east-1")
        return signer.presignedURL(
            method: method, url: URL(string: "\(TestS3.url)/\(TestS3.bucket)/\(key)")!, expires: expires, date: Date()
        ).absoluteString
    }

    /// `curl` for what the tests read back (a real client, not ours): status and body file.
    func curl(_ url: String, method: String = "GET", to output: String? = nil) throws -> Int {
        let out = output ?? root.appendingPathComponent("curl.out").path
        let text = try TestBroker.run("/usr/bin/curl", ["-s", "-X", method, "-o", out, "-w", "%{http_code}", url])
        return Int(text) ?? -1
    }
}

/// Tests/http/fixture.py, started for a test and stopped after it. posix_spawn and waitpid,
/// not Foundation's Process, whose waitUntilExit spins when called from an async test.
final class HTTPFixture {
    let pid: pid_t
    let port: Int
    /// Accepts connections and never answers.
    let stallPort: Int
    let record: String

    init(record: String, files: String) throws {
        self.record = record
        let out = record + ".stdout"
        let script = TestBroker.repositoryRoot.appendingPathComponent("Tests/http/fixture.py").path
        let pid = try Self.spawn(["/usr/bin/env", "python3", script, record, files], output: out, environment: ["WEBHOOK_SECRET": Self.secret])
        self.pid = pid
        let deadline = Date().addingTimeInterval(10)
        var port: Int?
        var stallPort: Int?
        while stallPort == nil && Date() < deadline {
            let lines = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
            port = lines.first.flatMap { $0.hasPrefix("listening ") ? Int($0.dropFirst("listening ".count)) : nil }
            stallPort = lines.dropFirst().first.flatMap { $0.hasPrefix("stalling ") ? Int($0.dropFirst("stalling ".count)) : nil }
            if stallPort == nil { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard let port, let stallPort else {
            kill(pid, SIGKILL)
            throw TestSupportError("the HTTP fixture said no port")
        }
        self.port = port
        self.stallPort = stallPort
    }

    /// The webhook secret the fixture verifies with (its own HMAC code, not the worker's).
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    var base: String { "http://127.0.0.1:\(port)" }

    func stop() {
        kill(pid, SIGTERM)
        _ = Self.wait(pid)
    }

    /// Starts `words` with stdout and stderr into `output`; the environment is this process's and `environment`.
    static func spawn(_ words: [String], output: String, environment: [String: String] = [:]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Default signal dispositions and no blocked signals: a ServiceGroup run by an earlier
        // test makes this process ignore SIGTERM, which a child would inherit.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = words.map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + env).forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, words[0], &actions, &attributes, argv, env) == 0 else { throw TestSupportError("cannot start \(words[0])") }
        return pid
    }

    /// The wait status of `pid`, once it ended.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// The requests recorded so far (webhook deliveries).
    func requests() -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: record, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

extension TestS3 {
    /// The admin identity as the worker's transfer step finds it: the standard AWS variables.
    static var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": admin.accessKeyID, "AWS_SECRET_ACCESS_KEY": admin.secretAccessKey, "AWS_REGION": region]
    }

    static var credentials: AWSCredentials { AWSCredentials(accessKeyID: admin.accessKeyID, secretAccessKey: admin.secretAccessKey) }
}
