import CRabbitMQ
import CRabbitMQShim
import WakePipe

#if canImport(Glibc)
    import Glibc
#endif

/// One AMQP 0-9-1 connection over rabbitmq-c.
///
/// **One owner thread.** rabbitmq-c connections are not thread-safe and have no
/// background thread: heartbeats are sent and checked only while the owner is
/// inside a call. So the thread that creates a connection is the only one that
/// may use it, and it must keep calling ``nextEvent(timeout:)`` (which returns
/// at least every half heartbeat) while it has nothing else to do. Other
/// threads reach the owner through ``wakeup``. Never call it from the Swift
/// concurrency pool: the calls block.
///
/// Sends are bounded by ``AMQPConfiguration/sendTimeout`` (a socket send
/// timeout), so a dead peer or a full socket ends the connection with an error
/// instead of blocking the owner forever, as 0.11's `amqp_basic_publish` would.
public final class AMQPConnection {
    public let configuration: AMQPConfiguration
    /// Signal it from any thread to make the owner's ``nextEvent(timeout:)`` return ``AMQPEvent/woken``.
    public let wakeup: WakePipe
    /// The heartbeat interval the broker and we agreed on; `.zero` when off.
    public private(set) var negotiatedHeartbeat: Duration = .zero

    private let state: amqp_connection_state_t
    private var socketDescriptor: Int32 = -1
    private var closedError: AMQPError?
    private var pendingEvents: [AMQPEvent] = []
    private var channels: [UInt16: ChannelState] = [:]
    private var lastChannelID: UInt16 = 0

    struct ChannelState {
        var confirmMode = false
        var nextPublishSequence: UInt64 = 1
        var unconfirmed: Set<UInt64> = []
        var settled: [UInt64: AMQPConfirm] = [:]
        var closedBy: AMQPError?
    }

    /// Connects and logs in. Throws ``AMQPError`` with kind `.connectionFailed`,
    /// `.authenticationFailed`, `.accessRefused` or `.tls`.
    /// Pass a `wakeup` to keep one across reconnects (a worker's result mailbox does).
    public init(configuration: AMQPConfiguration, wakeup: WakePipe = WakePipe()) throws(AMQPError) {
        self.configuration = configuration
        self.wakeup = wakeup
        guard let state = amqp_new_connection() else { throw AMQPError(.library, "out of memory") }
        self.state = state
        do {
            try open()
        } catch {
            closedError = error
            throw error
        }
    }

    /// Convenience: parse `url` and connect.
    public convenience init(url: String) throws(AMQPError) {
        try self.init(configuration: AMQPConfiguration(url: url))
    }

    deinit {
        if closedError == nil {
            _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        amqp_destroy_connection(state)
    }

    /// True until the connection is closed by us, by the broker, or lost.
    public var isOpen: Bool { closedError == nil }

    // MARK: - Opening and closing

    private func open() throws(AMQPError) {
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

    // MARK: - Channels

    /// Opens a new channel.
    public func openChannel() throws(AMQPError) -> AMQPChannel {
        try ensureOpen()
        var id = lastChannelID
        repeat { id = id == 2047 ? 1 : id + 1 } while channels[id] != nil && id != lastChannelID
        guard channels[id] == nil else { throw AMQPError(.invalidState, "no free channel id") }
        lastChannelID = id
        _ = amqp_channel_open(state, id)
        try checkReply("channel.open", channel: id)
        channels[id] = ChannelState()
        return AMQPChannel(connection: self, id: id)
    }

    func closeChannel(_ id: UInt16) throws(AMQPError) {
        guard let channel = channels[id] else { return }
        if channel.closedBy == nil, closedError == nil {
            _ = amqp_channel_close(state, id, AMQP_REPLY_SUCCESS)
            channels[id] = nil
            try checkReply("channel.close", channel: id)
        }
        channels[id] = nil
    }

    // MARK: - Events

    /// Waits up to `timeout` for the next thing the broker says, servicing
    /// heartbeats meanwhile. Returns `nil` when the time passed quietly.
    ///
    /// When the connection ends, returns ``AMQPEvent/connectionClosed(_:)`` once; later calls throw.
    public func nextEvent(timeout: Duration) throws(AMQPError) -> AMQPEvent? {
        if !pendingEvents.isEmpty { return pendingEvents.removeFirst() }
        try ensureOpen()
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            let (_, woken) = waitReadable(upTo: deadline - clock.now, watchWakeup: true)
            if woken {
                _ = wakeup.drain()
                return .woken
            }
            do {
                // Always enter the library: it sends a due heartbeat and notices a missed one.
                if let frame = try readFrame(), let event = try process(frame) { return event }
            } catch {
                return pendingEvents.isEmpty ? nil : pendingEvents.removeFirst()
            }
            if !pendingEvents.isEmpty { return pendingEvents.removeFirst() }
            if clock.now >= deadline { return nil }
        }
    }

    /// Waits until the broker confirms or rejects publish `sequence` on `channel`.
    /// Events that arrive meanwhile are kept for ``nextEvent(timeout:)``.
    func waitForConfirm(_ sequence: UInt64, channel: UInt16, timeout: Duration) throws(AMQPError) -> AMQPConfirm {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            guard let channelState = channels[channel] else { throw AMQPError(.invalidState, "channel \(channel) is not open") }
            if let outcome = channelState.settled[sequence] {
                channels[channel]?.settled[sequence] = nil
                return outcome
            }
            if let error = channelState.closedBy { throw error }
            try ensureOpen()
            if clock.now >= deadline {
                throw AMQPError(.timeout, "no publisher confirm for message \(sequence) on channel \(channel) within \(timeout)")
            }
            _ = waitReadable(upTo: deadline - clock.now, watchWakeup: false)
            if let frame = try readFrame(), let event = try process(frame) { pendingEvents.append(event) }
        }
    }

    // MARK: - Internals used by AMQPChannel

    func ensureOpen() throws(AMQPError) {
        if let closedError { throw closedError }
    }

    func ensureOpen(channel: UInt16) throws(AMQPError) {
        try ensureOpen()
        guard let channelState = channels[channel] else { throw AMQPError(.invalidState, "channel \(channel) is not open") }
        if let error = channelState.closedBy { throw error }
    }

    /// Runs `body` with the raw connection handle, then turns the RPC reply into an error if needed.
    func rpc(_ what: String, channel: UInt16, _ body: (amqp_connection_state_t) -> Void) throws(AMQPError) {
        try ensureOpen(channel: channel)
        body(state)
        try checkReply(what, channel: channel)
    }

    /// Runs a send (ack, nack, publish...) that answers with a status code.
    func send(_ what: String, channel: UInt16, _ body: (amqp_connection_state_t) -> Int32) throws(AMQPError) {
        try ensureOpen(channel: channel)
        let status = body(state)
        guard status == 0 else {
            throw fail(AMQPError(.connectionLost, "\(what) failed: \(Self.statusText(status))", libraryStatus: status))
        }
    }

    func enableConfirms(channel: UInt16) throws(AMQPError) {
        try rpc("confirm.select", channel: channel) { _ = amqp_confirm_select($0, channel) }
        channels[channel]?.confirmMode = true
    }

    /// Records a publish for confirm tracking; returns its sequence number (0 when the channel is not in confirm mode).
    func recordPublish(channel: UInt16) -> UInt64 {
        guard let channelState = channels[channel], channelState.confirmMode else { return 0 }
        let sequence = channelState.nextPublishSequence
        channels[channel]?.nextPublishSequence += 1
        channels[channel]?.unconfirmed.insert(sequence)
        return sequence
    }

    /// Marks the connection dead, queues the one `.connectionClosed` event and returns the error to throw.
    @discardableResult
    func fail(_ error: AMQPError) -> AMQPError {
        guard closedError == nil else { return closedError! }
        closedError = error
        pendingEvents.append(.connectionClosed(error))
        return error
    }

    private func checkReply(_ what: String, channel: UInt16) throws(AMQPError) {
        let reply = amqp_get_rpc_reply(state)
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == AMQPMethod.channelClose {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw channelClosed(channel, code: close.reply_code, text: close.reply_text.string, during: what)
            }
            if reply.reply.id == AMQPMethod.connectionClose {
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw connectionClosedByBroker(code: close.reply_code, text: close.reply_text.string)
            }
            throw fail(AMQPError(.library, "\(what): unexpected method 0x\(String(reply.reply.id, radix: 16))"))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let status = Self.normalized(reply.library_error)
            if status == AMQP_STATUS_TIMEOUT.rawValue {
                // rabbitmq-c leaves the connection unusable after an RPC timeout.
                throw fail(AMQPError(.timeout, "no reply to \(what) within \(configuration.rpcTimeout)", libraryStatus: status))
            }
            throw fail(AMQPError(.connectionLost, "\(what) failed: \(Self.statusText(status))", libraryStatus: status))
        default:
            throw fail(AMQPError(.library, "\(what): no reply"))
        }
    }

    private func channelClosed(_ channel: UInt16, code: UInt16, text: String, during what: String? = nil) -> AMQPError {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, channel, AMQPMethod.channelCloseOK, &ok)
        var message = text
        if let what { message = "\(what): \(text)" }
        let error = AMQPError(.channelClosed, message, replyCode: code)
        channels[channel]?.closedBy = error
        return error
    }

    @discardableResult
    private func connectionClosedByBroker(code: UInt16, text: String) -> AMQPError {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, AMQPMethod.connectionCloseOK, &ok)
        return fail(AMQPError(.connectionClosed, text, replyCode: code))
    }

    /// poll() on the socket (and the wakeup pipe), at most half a heartbeat so heartbeats keep flowing.
    private func waitReadable(upTo wait: Duration, watchWakeup: Bool) -> (socket: Bool, woken: Bool) {
        if amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0 { return (true, false) }
        var slice = max(wait, .zero)
        if negotiatedHeartbeat > .zero { slice = min(slice, negotiatedHeartbeat / 2) }
        var fds = [pollfd(fd: socketDescriptor, events: Int16(POLLIN), revents: 0)]
        if watchWakeup { fds.append(pollfd(fd: wakeup.readDescriptor, events: Int16(POLLIN), revents: 0)) }
        // Rounded up, so a 0.4 ms wait does not become a busy 0 ms poll.
        let ms = min(WakePipe.milliseconds(slice), 60_000)
        let ready = poll(&fds, nfds_t(fds.count), ms)
        guard ready > 0 else { return (false, false) }
        return (fds[0].revents != 0, watchWakeup && fds[1].revents != 0)
    }

    /// Reads one frame if one is ready; nil when none is. Throws (and fails the connection) on socket loss or heartbeat timeout.
    private func readFrame() throws(AMQPError) -> amqp_frame_t? {
        var frame = amqp_frame_t()
        var immediately = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &immediately)
        if status == 0 { return frame }
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        if status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue {
            throw fail(
                AMQPError(.connectionLost, "no heartbeat from the broker for two intervals (\(negotiatedHeartbeat * 2))", libraryStatus: status))
        }
        throw fail(
            AMQPError(
                .connectionLost, "connection to \(configuration.host):\(configuration.port) lost: \(Self.statusText(status))", libraryStatus: status))
    }

    /// Turns one frame into an event, answering close methods as the protocol requires.
    private func process(_ frame: amqp_frame_t) throws(AMQPError) -> AMQPEvent? {
        defer { amqp_maybe_release_buffers(state) }
        guard frame.frame_type == AMQP_FRAME_METHOD else { return nil }
        let channel = frame.channel
        let method = frame.payload.method
        switch method.id {
        case AMQPMethod.basicDeliver:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let (properties, body) = try readContent(channel: channel)
            return .delivery(
                AMQPDelivery(
                    channel: channel, consumerTag: deliver.consumer_tag.string, deliveryTag: deliver.delivery_tag,
                    redelivered: deliver.redelivered != 0, exchange: deliver.exchange.string,
                    routingKey: deliver.routing_key.string, properties: properties, body: body))
        case AMQPMethod.basicReturn:
            let returned = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let (properties, body) = try readContent(channel: channel)
            return .returned(
                AMQPReturnedMessage(
                    channel: channel, replyCode: returned.reply_code, replyText: returned.reply_text.string,
                    exchange: returned.exchange.string, routingKey: returned.routing_key.string,
                    properties: properties, body: body))
        case AMQPMethod.basicAck:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            settle(channel: channel, tag: ack.delivery_tag, multiple: ack.multiple != 0, as: .ack)
            return nil
        case AMQPMethod.basicNack:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            settle(channel: channel, tag: nack.delivery_tag, multiple: nack.multiple != 0, as: .nack)
            return nil
        case AMQPMethod.channelClose:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = channelClosed(channel, code: close.reply_code, text: close.reply_text.string)
            return .channelClosed(channel: channel, replyCode: close.reply_code, replyText: error.message)
        case AMQPMethod.connectionClose:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            // fail() queued the one .connectionClosed event; hand it out now.
            connectionClosedByBroker(code: close.reply_code, text: close.reply_text.string)
            return pendingEvents.isEmpty ? nil : pendingEvents.removeFirst()
        case AMQPMethod.basicCancel:
            let cancel = method.decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            return .consumerCancelled(channel: channel, consumerTag: cancel.consumer_tag.string)
        case AMQPMethod.connectionBlocked:
            let blocked = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            return .blocked(reason: blocked.reason.string)
        case AMQPMethod.connectionUnblocked:
            return .unblocked
        default:
            return nil  // e.g. a late basic.cancel-ok
        }
    }

    private func readContent(channel: UInt16) throws(AMQPError) -> (AMQPProperties, [UInt8]) {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            let status = Self.normalized(reply.library_error)
            throw fail(
                AMQPError(.connectionLost, "reading a message on channel \(channel) failed: \(Self.statusText(status))", libraryStatus: status))
        }
        defer { amqp_destroy_message(&message) }
        return (message.properties.swiftProperties, message.body.array)
    }

    private func settle(channel: UInt16, tag: UInt64, multiple: Bool, as outcome: AMQPConfirm) {
        guard var channelState = channels[channel] else { return }
        let tags = multiple ? channelState.unconfirmed.filter { $0 <= tag } : [tag]
        for t in tags {
            channelState.unconfirmed.remove(t)
            channelState.settled[t] = outcome
        }
        channels[channel] = channelState
    }

    // MARK: - Helpers

    static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    static func normalized(_ status: Int32) -> Int32 { status > 0 ? -status : status }

    static func isTLSStatus(_ status: Int32) -> Bool { status <= -0x200 && status > -0x300 }

    static func cTimeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
