import Foundation

/// The private S3-compatible server the tests use (SeaweedFS, started by `make test` and CI through
/// scripts/s3.sh) and its identities. As with the broker, tests never skip when it is absent: they
/// fail. The credentials are TEST-ONLY, fixed in scripts/s3.sh for a server on 127.0.0.1; they
/// protect nothing. docs/storage.md says what this server does and does not do like AWS S3.
public enum TestS3 {
    public struct Identity: Sendable {
        public let accessKeyID: String
        public let secretAccessKey: String
    }

    private static let processEnvironment = ProcessInfo.processInfo.environment
    public static let port = Int(processEnvironment["GENWORKER_S3_PORT"] ?? "") ?? 8533
    /// The endpoint, path-style: `URL/BUCKET/KEY`.
    public static let url = processEnvironment["GENWORKER_S3_URL"] ?? "http://127.0.0.1:\(port)"
    public static let region = "us-east-1"

    /// Every action on every bucket.
    public static let admin = Identity(
        accessKeyID: processEnvironment["GENWORKER_S3_ACCESS_KEY_ID"] ?? "genworker-test",
        secretAccessKey: processEnvironment["GENWORKER_S3_SECRET_ACCESS_KEY"] ?? "genworker-test-secret-not-for-production"
    )
    /// Read and List on every bucket; a write is refused with 403 AccessDenied.
    public static let readOnly = Identity(
        accessKeyID: "genworker-readonly", secretAccessKey: "genworker-readonly-secret-not-for-production")
    /// Read, List, Write and Tagging on `limitedBucket` only; 403 AccessDenied on any other.
    public static let limited = Identity(
        accessKeyID: "genworker-limited", secretAccessKey: "genworker-limited-secret-not-for-production")

    /// The bucket the tests write in; scripts/s3.sh creates it.
    public static let bucket = "genworker-test"
    /// The only bucket `limited` may use; scripts/s3.sh creates it.
    public static let limitedBucket = "genworker-limited"

    public static var script: String { TestBroker.repositoryRoot.appendingPathComponent("scripts/s3.sh").path }

    /// A key prefix no other test uses, ending in "/".
    public static func uniquePrefix(_ name: String) -> String {
        "tests/\(name)/\(UUID().uuidString.prefix(8).lowercased())/"
    }
}
