/// Why a transfer failed, in words that name the URL (without its query: a presigned URL's
/// signature is a secret), the store and the HTTP status. Never holds credentials.
public struct TransferError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        /// The egress rules refuse where the URL leads (scheme, address, the broker).
        case refused
        /// 404, or a missing bucket or key.
        case notFound
        /// Larger than `inputs.max_mb`.
        case tooLarge
        /// Not the kind of file the param needs (by its bytes).
        case wrongKind
        case timedOut
        /// Any other HTTP status.
        case status(Int)
        /// The connection failed or broke.
        case connection
        /// No credentials found for the store.
        case credentials
        case cancelled
        /// A local file could not be read or written.
        case file
    }

    public var code: Code
    public var message: String
    public var description: String { message }

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Worth another try: the server's fault or the network's, not the request's.
    var isRetryable: Bool {
        switch code {
        case .connection, .timedOut: return true
        case .status(let status): return status >= 500 || status == 429 || status == 408
        default: return false
        }
    }
}
