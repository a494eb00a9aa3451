/// A message the broker delivered to one of our consumers.
public struct AMQPDelivery: Sendable {
    public var channel: UInt16
    public var consumerTag: String
    public var deliveryTag: UInt64
    /// The broker delivered this message before (to us or to another consumer) without an ack.
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    public var body: [UInt8]

    package init(
        channel: UInt16, consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String,
        properties: AMQPProperties, body: [UInt8]
    ) {
        self.channel = channel
        self.consumerTag = consumerTag
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
    }
}

/// A mandatory message the broker could not route and sent back (`basic.return`).
public struct AMQPReturnedMessage: Sendable {
    public var channel: UInt16
    public var replyCode: UInt16
    public var replyText: String
    public var exchange: String
    public var routingKey: String
    public var properties: AMQPProperties
    public var body: [UInt8]

    package init(
        channel: UInt16, replyCode: UInt16, replyText: String, exchange: String, routingKey: String, properties: AMQPProperties, body: [UInt8]
    ) {
        self.channel = channel
        self.replyCode = replyCode
        self.replyText = replyText
        self.exchange = exchange
        self.routingKey = routingKey
        self.properties = properties
        self.body = body
    }
}

/// The broker's answer to a publish on a channel in confirm mode.
public enum AMQPConfirm: Sendable, Equatable {
    /// The broker has taken responsibility for the message (written to disk for persistent ones on durable queues).
    case ack
    /// The broker could not take it.
    case nack
}

/// Everything the broker can tell us between our own calls, as ``AMQPConnection/nextEvent(timeout:)`` returns it.
public enum AMQPEvent: Sendable {
    case delivery(AMQPDelivery)
    case returned(AMQPReturnedMessage)
    /// The broker closed a channel; the connection goes on.
    case channelClosed(channel: UInt16, replyCode: UInt16, replyText: String)
    /// The broker cancelled one of our consumers (queue deleted, or the node hosting it failed).
    case consumerCancelled(channel: UInt16, consumerTag: String)
    /// The broker stopped reading our publishes (memory or disk alarm).
    case blocked(reason: String)
    case unblocked
    /// The connection is gone: closed by the broker (with its code and text) or lost
    /// (socket error, missed heartbeats). Every later call throws.
    case connectionClosed(AMQPError)
    /// Another thread called the connection's `WakePipe.signal()`.
    case woken
}
