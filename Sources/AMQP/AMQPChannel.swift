import CRabbitMQ

/// A channel of an ``AMQPConnection``. Like its connection, it belongs to the owner thread.
public struct AMQPChannel {
    public let connection: AMQPConnection
    public let id: UInt16

    /// Closes the channel (`channel.close`).
    public func close() throws(AMQPError) { try connection.closeChannel(id) }

    public func declareExchange(
        _ name: String, type: String, durable: Bool = true, autoDelete: Bool = false,
        isInternal: Bool = false, passive: Bool = false, arguments: AMQPTable = [:]
    ) throws(AMQPError) {
        let arena = CArena()
        try connection.rpc("exchange.declare \(name)", channel: id) { state in
            _ = amqp_exchange_declare(
                state, id, arena.bytes(name), arena.bytes(type), passive ? 1 : 0, durable ? 1 : 0,
                autoDelete ? 1 : 0, isInternal ? 1 : 0, arena.table(arguments))
        }
    }

    public func deleteExchange(_ name: String) throws(AMQPError) {
        let arena = CArena()
        try connection.rpc("exchange.delete \(name)", channel: id) { _ = amqp_exchange_delete($0, id, arena.bytes(name), 0) }
    }

    /// Declares a queue; an empty name asks the broker for a fresh one. Returns the name and counts.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        passive: Bool = false, arguments: AMQPTable = [:]
    ) throws(AMQPError) -> AMQPQueueInfo {
        let arena = CArena()
        var info = AMQPQueueInfo(name: name, messageCount: 0, consumerCount: 0)
        try connection.rpc("queue.declare \(name)", channel: id) { state in
            if let ok = amqp_queue_declare(
                state, id, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0,
                exclusive ? 1 : 0, autoDelete ? 1 : 0, arena.table(arguments))
            {
                info = AMQPQueueInfo(
                    name: ok.pointee.queue.string, messageCount: ok.pointee.message_count,
                    consumerCount: ok.pointee.consumer_count)
            }
        }
        return info
    }

    /// Deletes a queue; returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String) throws(AMQPError) -> UInt32 {
        let arena = CArena()
        var count: UInt32 = 0
        try connection.rpc("queue.delete \(name)", channel: id) { state in
            count = amqp_queue_delete(state, id, arena.bytes(name), 0, 0)?.pointee.message_count ?? 0
        }
        return count
    }

    @discardableResult
    public func purgeQueue(_ name: String) throws(AMQPError) -> UInt32 {
        let arena = CArena()
        var count: UInt32 = 0
        try connection.rpc("queue.purge \(name)", channel: id) { state in
            count = amqp_queue_purge(state, id, arena.bytes(name))?.pointee.message_count ?? 0
        }
        return count
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) throws(AMQPError) {
        let arena = CArena()
        try connection.rpc("queue.bind \(queue) to \(exchange)", channel: id) { state in
            _ = amqp_queue_bind(state, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
        }
    }

    public func unbindQueue(_ queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) throws(AMQPError) {
        let arena = CArena()
        try connection.rpc("queue.unbind \(queue) from \(exchange)", channel: id) { state in
            _ = amqp_queue_unbind(state, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
        }
    }

    /// `basic.qos`: at most `prefetchCount` unacked deliveries per consumer (or per channel when `global`).
    public func qos(prefetchCount: UInt16, global: Bool = false) throws(AMQPError) {
        try connection.rpc("basic.qos", channel: id) { _ = amqp_basic_qos($0, id, 0, prefetchCount, global ? 1 : 0) }
    }

    /// Starts a consumer; returns its tag (the broker's when `consumerTag` is empty).
    @discardableResult
    public func consume(
        queue: String, consumerTag: String = "", noAck: Bool = false, exclusive: Bool = false,
        arguments: AMQPTable = [:]
    ) throws(AMQPError) -> String {
        let arena = CArena()
        var tag = consumerTag
        try connection.rpc("basic.consume \(queue)", channel: id) { state in
            if let ok = amqp_basic_consume(
                state, id, arena.bytes(queue), arena.bytes(consumerTag), 0, noAck ? 1 : 0,
                exclusive ? 1 : 0, arena.table(arguments))
            {
                tag = ok.pointee.consumer_tag.string
            }
        }
        return tag
    }

    public func cancel(consumerTag: String) throws(AMQPError) {
        let arena = CArena()
        try connection.rpc("basic.cancel \(consumerTag)", channel: id) { _ = amqp_basic_cancel($0, id, arena.bytes(consumerTag)) }
    }

    public func ack(_ deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        try connection.send("basic.ack", channel: id) { amqp_basic_ack($0, id, deliveryTag, multiple ? 1 : 0) }
    }

    public func nack(_ deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) throws(AMQPError) {
        try connection.send("basic.nack", channel: id) { amqp_basic_nack($0, id, deliveryTag, multiple ? 1 : 0, requeue ? 1 : 0) }
    }

    public func reject(_ deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        try connection.send("basic.reject", channel: id) { amqp_basic_reject($0, id, deliveryTag, requeue ? 1 : 0) }
    }

    /// Puts the channel in publisher-confirm mode (`confirm.select`).
    public func enableConfirms() throws(AMQPError) { try connection.enableConfirms(channel: id) }

    /// Publishes a message. Returns its confirm sequence number when the channel is in
    /// confirm mode (pass it to ``waitForConfirm(_:timeout:)``), else 0.
    /// With `mandatory`, an unroutable message comes back as ``AMQPEvent/returned(_:)``.
    @discardableResult
    public func publish(
        exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties = AMQPProperties(),
        mandatory: Bool = false
    ) throws(AMQPError) -> UInt64 {
        let arena = CArena()
        var cProperties = arena.properties(properties)
        try connection.send("basic.publish to \(exchange.isEmpty ? "(default)" : exchange)", channel: id) { state in
            amqp_basic_publish(
                state, id, arena.bytes(exchange), arena.bytes(routingKey), mandatory ? 1 : 0, 0,
                &cProperties, arena.bytes(body))
        }
        return connection.recordPublish(channel: id)
    }

    /// Waits for the broker's `basic.ack` / `basic.nack` of publish `sequence`.
    /// Throws `.timeout` when none comes within `timeout`.
    public func waitForConfirm(_ sequence: UInt64, timeout: Duration = .seconds(10)) throws(AMQPError) -> AMQPConfirm {
        try connection.waitForConfirm(sequence, channel: id, timeout: timeout)
    }

    /// Publishes and waits for the confirm: the usual way to hand the broker a message that must not be lost.
    public func publishConfirmed(
        exchange: String, routingKey: String, body: [UInt8],
        properties: AMQPProperties = AMQPProperties(), mandatory: Bool = false,
        timeout: Duration = .seconds(10)
    ) throws(AMQPError) -> AMQPConfirm {
        let sequence = try publish(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: mandatory)
        return try waitForConfirm(sequence, timeout: timeout)
    }
}

/// What `queue.declare-ok` reports.
public struct AMQPQueueInfo: Sendable, Equatable {
    public var name: String
    public var messageCount: UInt32
    public var consumerCount: UInt32
}
