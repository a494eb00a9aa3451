import CRabbitMQ
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
    public internal(set) var negotiatedHeartbeat: Duration = .zero

    // Internal, not private: the opening (AMQPConnection+Opening.swift) and the frame decoding
    // (AMQPConnection+Frames.swift) live in files of their own.
    let state: amqp_connection_state_t
    var socketDescriptor: Int32 = -1
    var closedError: AMQPError?
    var pendingEvents: [AMQPEvent] = []
    var channels: [UInt16: ChannelState] = [:]
    private var lastChannelID: UInt16 = 0

    struct ChannelState {
        /// Set by `confirm.select`: the channel's publishes and the broker's acks and nacks of them.
        var confirms: ConfirmTracker?
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
            guard channels[channel] != nil else { throw AMQPError(.invalidState, "channel \(channel) is not open") }
            if let outcome = channels[channel]?.confirms?.claim(sequence) { return outcome }
            if let error = channels[channel]?.closedBy { throw error }
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
        // A second confirm.select keeps counting where the first began.
        if channels[channel]?.confirms == nil { channels[channel]?.confirms = ConfirmTracker() }
    }

    /// Records a publish for confirm tracking; returns its sequence number (0 when the channel is not in confirm mode).
    func recordPublish(channel: UInt16) -> UInt64 {
        channels[channel]?.confirms?.published() ?? 0
    }

    /// Marks the connection dead, queues the one `.connectionClosed` event and returns the error to throw.
    @discardableResult
    func fail(_ error: AMQPError) -> AMQPError {
        guard closedError == nil else { return closedError! }
        closedError = error
        pendingEvents.append(.connectionClosed(error))
        return error
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
