extension WorkerConfiguration {
    /// `api`: the versioned HTTP API (`/v1`, docs/protocol.md "HTTP API"), served by the
    /// process that serves the dashboard.
    public struct APISection: Sendable, Equatable, Decodable, ConfigSection {
        /// What a token may do.
        public enum Role: String, Sendable, Equatable, CaseIterable {
            /// Reads.
            case read
            /// Reads, submits, and cancels of the jobs it submitted.
            case submit
            /// Everything, cancels of anyone's jobs included.
            case admin
        }

        /// `api.enabled`: serve `/v1` beside the dashboard.
        public var enabled = true
        /// `api.tokens`: token name → `ROLE:SHA256` (role `read`, `submit` or `admin`; the
        /// token's SHA-256 in hex: `printf %s "$TOKEN" | sha256sum`). The name is the submitter
        /// the ledger records for what the token submits.
        public var tokens: [String: String] = [:]
        /// `api.read_requires_token`: reads need a token or a dashboard user too.
        public var readRequiresToken = false
        /// `api.allowed_origins`: browser origins besides the API's own from which a signed-in
        /// dashboard user may change state (submit, cancel); e.g. `https://app.example.com`.
        public var allowedOrigins: [String] = []

        /// The tokens as (role, hash) by name; `keys` checked every value.
        public var tokenRoles: [String: (role: Role, sha256: String)] {
            tokens.compactMapValues { Self.parse($0) }
        }

        static func parse(_ value: String) -> (role: Role, sha256: String)? {
            let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let role = Role(rawValue: parts[0]), parts[1].count == 64,
                parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else { return nil }
            return (role, parts[1])
        }

        package static var keys: [ConfigKey<Self>] {
            [
                .key("enabled", \.enabled),
                .key("tokens", \.tokens) { tokens in
                    for (name, value) in tokens where parse(value) == nil {
                        throw GenWorkerError(
                            .configuration,
                            "api.tokens.\(name) must be ROLE:SHA256 (role read, submit or admin; the token's SHA-256 in lowercase hex), not a token")
                    }
                },
                .key("read_requires_token", \.readRequiresToken),
                .key("allowed_origins", \.allowedOrigins),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
