import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The private RabbitMQ the tests use (started by `make test` through scripts/broker.sh), the
/// repository's paths, and child processes. Tests never skip when the broker is absent: they
/// fail, so a run without a broker cannot pass. Connecting is `BrokerTestSupport`'s (the unit
/// tests link no AMQP).
public enum TestBroker {
    public static let port = Int(ProcessInfo.processInfo.environment["GENWORKER_BROKER_PORT"] ?? "") ?? 5679
    public static let url = ProcessInfo.processInfo.environment["GENWORKER_TEST_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:\(port)/"

    /// The repository's root, from this file's path.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static var script: String { repositoryRoot.appendingPathComponent("scripts/broker.sh").path }

    /// The `genworker` executable SwiftPM built beside the test bundle.
    public static var genworkerExecutable: String {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "")
            .deletingLastPathComponent().appendingPathComponent("genworker").path
    }

    /// The broker's private directory (TLS files live in `tls/` under it).
    public static func directory(port: Int = port) throws -> String {
        try run(script, ["dir"], environment: ["GENWORKER_BROKER_PORT": String(port)]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A queue name no other test uses.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix).\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs a program to completion and returns its stdout; throws when it exits non-zero.
    /// posix_spawn and waitpid rather than Foundation's Process, whose waitUntilExit can
    /// miss the exit of a script that leaves a daemon (the broker) behind.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let (status, output) = try runCapturing(executable, arguments, environment: environment)
        guard status == 0 else { throw TestSupportError("\(executable) \(arguments) failed (wait status \(status))") }
        return output
    }

    /// Runs a program to completion; returns its wait status and stdout (stderr goes to `stderrPath` when given).
    public static func runCapturing(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        stderrPath: String? = nil
    ) throws -> (status: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("genworker-run-\(UUID().uuidString)").path
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let stderrPath { posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + env).forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, env)
        guard status == 0 else { throw TestSupportError("cannot start \(executable): errno \(status)") }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        return (waitStatus, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
