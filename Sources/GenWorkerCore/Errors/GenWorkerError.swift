import AMQPTypes

/// What went wrong in the worker or a command, as a code callers can switch on and a
/// sentence for people. Descriptions never hold a password: URLs are shown through
/// ``redacted(url:)``.
public struct GenWorkerError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable, Equatable {
        /// The config file or a value in it (or in the environment) is wrong.
        case configuration
        /// No broker answered at the URL (down, wrong host or port, TLS failed).
        case brokerUnreachable
        /// The broker answered but refused us (user, password, vhost, permissions).
        case brokerRefused
        /// The broker refused or lost a message we published (basic.nack, connection loss).
        case brokerFailed
        /// The metrics/health endpoint cannot listen (address taken, not an address).
        case listenFailed
        /// A message could not be encoded or decoded.
        case encoding
        /// A helper program (the watchdog) could not be started.
        case helperUnavailable
        /// Another live worker on this machine has the same name on the same queue.
        case identityInUse
        /// A run's video could not be moved into `outputs.dir` (permissions, another filesystem).
        case outputUnavailable
    }

    public var code: Code
    public var message: String
    /// What to try next, when there is a likely fix.
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message) (\($0))" } ?? message }

    /// A connection attempt that failed, as a person should read it: the URL without its
    /// password, what happened, and what to try.
    public static func connecting(to url: String, _ error: AMQPError) -> GenWorkerError {
        let shown = redacted(url: url)
        switch error.kind {
        case .authenticationFailed, .accessRefused:
            return GenWorkerError(
                .brokerRefused, "the broker at \(shown) refused the login: \(error.message)",
                hint: "check the user, password and vhost in amqp.url or GENWORKER_AMQP_URL")
        case .invalidURL:
            return GenWorkerError(.configuration, "amqp.url: \(error.message)")
        default:
            return GenWorkerError(
                .brokerUnreachable, "cannot reach the broker at \(shown): \(error.message)",
                hint: "is RabbitMQ running? `make broker` starts a private one; else check amqp.url, GENWORKER_AMQP_URL or --url")
        }
    }

    /// `url` with any password replaced by `***`.
    public static func redacted(url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let userInfo = url[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}
