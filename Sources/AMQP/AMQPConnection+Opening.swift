import CRabbitMQ
import CRabbitMQShim

// Opening a connection and logging in, and closing it politely: the socket (TCP or TLS),
// its timeouts, the login and what a refused one means.
extension AMQPConnection {
    /// Opens the socket with its timeouts and logs in; `init` calls it once.
    func open() throws(AMQPError) {
        let where_ = "\(configuration.host):\(configuration.port)"
        let socket: OpaquePointer?
        if let tls = configuration.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw AMQPError(.tls, "could not create a TLS socket") }
            if let ca = tls.caCertificateFile {
                let status = amqp_ssl_socket_set_cacert(socket, ca)
                guard status == 0 else { throw AMQPError(.tls, "cannot load CA file \(ca): \(Self.statusText(status))", libraryStatus: status) }
            }
            if let cert = tls.certificateFile, let key = tls.keyFile {
                let status = amqp_ssl_socket_set_key(socket, cert, key)
                guard status == 0 else {
                    throw AMQPError(.tls, "cannot load client certificate \(cert) / key \(key): \(Self.statusText(status))", libraryStatus: status)
                }
            }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
        } else {
            socket = amqp_tcp_socket_new(state)
            guard socket != nil else { throw AMQPError(.library, "could not create a TCP socket") }
        }
        var connectTimeout = Self.cTimeval(configuration.connectTimeout)
        let openStatus = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &connectTimeout)
        guard openStatus == 0 else {
            if Self.isTLSStatus(openStatus) {
                throw AMQPError(.tls, "TLS handshake with \(where_) failed: \(Self.statusText(openStatus))", libraryStatus: openStatus)
            }
            throw AMQPError(.connectionFailed, "cannot connect to \(where_): \(Self.statusText(openStatus))", libraryStatus: openStatus)
        }
        socketDescriptor = amqp_get_sockfd(state)
        _ = gw_socket_set_send_timeout(socketDescriptor, Self.milliseconds(configuration.sendTimeout))
        var handshakeTimeout = Self.cTimeval(configuration.connectTimeout)
        _ = amqp_set_handshake_timeout(state, &handshakeTimeout)
        var rpcTimeout = Self.cTimeval(configuration.rpcTimeout)
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)

        let heartbeatSeconds = Int32(configuration.heartbeat.components.seconds)
        let reply = gw_amqp_login(
            state, configuration.virtualHost, 2047, Int32(configuration.frameMax), heartbeatSeconds,
            configuration.user, configuration.password, configuration.connectionName ?? "")
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            break
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == AMQPMethod.connectionClose:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t()
            _ = amqp_send_method(state, 0, AMQPMethod.connectionCloseOK, &ok)
            let code = close.reply_code
            let text = close.reply_text.string
            switch code {
            case 403: throw AMQPError(.authenticationFailed, "login to \(where_) as '\(configuration.user)' refused: \(text)", replyCode: code)
            case 530:
                throw AMQPError(.accessRefused, "vhost '\(configuration.virtualHost)' refused for '\(configuration.user)': \(text)", replyCode: code)
            default: throw AMQPError(.connectionFailed, "login to \(where_) failed: \(text)", replyCode: code)
            }
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let status = Self.normalized(reply.library_error)
            throw AMQPError(.connectionFailed, "AMQP handshake with \(where_) failed: \(Self.statusText(status))", libraryStatus: status)
        default:
            throw AMQPError(.connectionFailed, "AMQP handshake with \(where_) failed")
        }
        negotiatedHeartbeat = .seconds(Int(amqp_get_heartbeat(state)))
    }

    /// Closes the connection politely (`connection.close`). Safe to call twice.
    public func close() {
        guard closedError == nil else { return }
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        closedError = AMQPError(.invalidState, "the connection was closed by this client")
    }
}
