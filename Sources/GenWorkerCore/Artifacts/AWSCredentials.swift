import Foundation

/// An access key for S3-compatible storage. Neither `description` nor a mirror (`dump`,
/// `String(reflecting:)`) shows the secret or the session token: credentials end up in logs
/// through error messages and debug prints, never on purpose.
///
/// The loaders are pure: callers pass the environment and the file's contents, so tests need
/// no home directory and the order is the one the AWS SDKs and CLI follow.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Set for temporary credentials (STS, an assumed role); sent as `x-amz-security-token`.
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String {
        "AWSCredentials(\(accessKeyID), secret redacted\(sessionToken == nil ? "" : ", session token redacted"))"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "accessKeyID": accessKeyID, "secretAccessKey": "redacted",
                "sessionToken": sessionToken == nil ? "none" : "redacted",
            ], displayStyle: .struct)
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set, `AWS_SESSION_TOKEN`; nil
    /// unless both the key id and the secret are set and not empty.
    public static func fromEnvironment(_ environment: [String: String]) -> AWSCredentials? {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let id = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else { return nil }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
    }

    /// One profile of a shared credentials file (`~/.aws/credentials`): INI sections
    /// `[default]` or `[name]`, `key = value` lines (`aws_access_key_id`,
    /// `aws_secret_access_key`, `aws_session_token`), whole-line comments starting with `#` or
    /// `;`. Keys are case-insensitive, as in the CLI's parser; a section that appears twice is
    /// read as one, later lines winning. Nil when the profile is missing or lacks the key id or
    /// the secret.
    public static func fromCredentialsFile(contents: String, profile: String) -> AWSCredentials? {
        var inProfile = false
        var values: [String: String] = [:]
        for rawLine in contents.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                inProfile = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces) == profile
                continue
            }
            guard inProfile, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            values[key] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
        guard let id = values["aws_access_key_id"], !id.isEmpty,
            let secret = values["aws_secret_access_key"], !secret.isEmpty
        else { return nil }
        let token = values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    /// The standard order: the environment variables first; then the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, else `$HOME/.aws/credentials`), profile `AWS_PROFILE`
    /// or `default`. `readFile` returns a file's contents, or nil when it cannot be read. Nil
    /// when neither gives credentials.
    public static func resolve(environment: [String: String], readFile: (String) -> String?) -> AWSCredentials? {
        if let fromEnvironment = fromEnvironment(environment) { return fromEnvironment }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        let path: String
        if let configured = environment["AWS_SHARED_CREDENTIALS_FILE"], !configured.isEmpty {
            // The CLI expands a leading `~` here; the shell does not when the variable is quoted.
            if configured.hasPrefix("~/"), let home {
                path = home + configured.dropFirst()
            } else {
                path = configured
            }
        } else if let home {
            path = home + "/.aws/credentials"
        } else {
            return nil
        }
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        return readFile(path).flatMap { fromCredentialsFile(contents: $0, profile: profile) }
    }
}
