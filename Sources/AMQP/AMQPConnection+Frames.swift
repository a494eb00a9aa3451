import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#endif

// Frame decoding: what rabbitmq-c hands us (frames, RPC replies) turned into `AMQPEvent`s,
// errors and confirm outcomes, answering the close methods as the protocol requires.
extension AMQPConnection {
    /// Turns the last RPC's reply into an error: a channel or connection closed by the broker
    /// (answered with close-ok), or a library failure, which ends the connection.
    func checkReply(_ what: String, channel: UInt16) throws(AMQPError) {
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

    /// Reads one frame if one is ready; nil when none is. Throws (and fails the connection) on socket loss or heartbeat timeout.
    func readFrame() throws(AMQPError) -> amqp_frame_t? {
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
    func process(_ frame: amqp_frame_t) throws(AMQPError) -> AMQPEvent? {
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

    /// A `basic.ack` or `basic.nack` of our publishes: the channel's confirm tracker settles them.
    private func settle(channel: UInt16, tag: UInt64, multiple: Bool, as outcome: AMQPConfirm) {
        channels[channel]?.confirms?.received(outcome, deliveryTag: tag, multiple: multiple)
    }
}
