import Crypto

/// SHA-256 as S3 wants it in `x-amz-content-sha256`: lowercase hex.
enum Hashing {
    /// Of an empty payload (GET, DELETE, an empty POST).
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }
}
