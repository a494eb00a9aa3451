/// An error from the AMQP layer: what kind, and the broker's reply code and text
/// when the broker sent one. rabbitmq-c's own status stays inside this module.
///
/// Its `description` never contains a password: nothing that builds one is given the password.
public struct AMQPError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The URL or a configuration value is malformed.
        case invalidURL
        /// TCP connect, DNS or the AMQP handshake failed.
        case connectionFailed
        /// The broker refused the user or password (403 ACCESS_REFUSED during login).
        case authenticationFailed
        /// The broker refused the vhost (530 NOT_ALLOWED) or another login step.
        case accessRefused
        /// TLS setup, handshake or certificate verification failed.
        case tls
        /// The broker closed a channel (`channel.close`); the connection goes on.
        case channelClosed
        /// The broker closed the connection (`connection.close`).
        case connectionClosed
        /// The socket failed, or no heartbeat came in time: the connection is gone.
        case connectionLost
        /// A call's deadline passed (an RPC reply, a publisher confirm).
        case timeout
        /// The call is not valid in this state (a closed connection, an unknown channel).
        case invalidState
        /// Any other rabbitmq-c failure.
        case library
    }

    public var kind: Kind
    /// AMQP reply code from the broker (e.g. 404, 406, 403, 320), when there was one.
    public var replyCode: UInt16?
    /// The broker's reply text or our explanation.
    public var message: String
    /// rabbitmq-c's status (negative `amqp_status_enum`), when the library reported the failure.
    /// Internal: no C status code crosses the module's API.
    package var libraryStatus: Int32?

    public init(_ kind: Kind, _ message: String, replyCode: UInt16? = nil) {
        self.init(kind, message, replyCode: replyCode, libraryStatus: nil)
    }

    package init(_ kind: Kind, _ message: String, replyCode: UInt16? = nil, libraryStatus: Int32?) {
        self.kind = kind
        self.message = message
        self.replyCode = replyCode
        self.libraryStatus = libraryStatus
    }

    public var description: String {
        var text = "AMQP \(kind)"
        if let replyCode { text += " \(replyCode)" }
        text += ": \(message)"
        return text
    }

    /// True when the connection cannot be used any more.
    public var isConnectionFatal: Bool {
        switch kind {
        case .connectionClosed, .connectionLost, .connectionFailed, .authenticationFailed, .accessRefused, .tls:
            return true
        case .invalidURL, .channelClosed, .timeout, .invalidState, .library:
            return false
        }
    }
}
