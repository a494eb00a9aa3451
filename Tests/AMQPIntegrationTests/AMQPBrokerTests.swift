import AMQP
import BrokerTestSupport
import Foundation
import XCTest

/// The AMQP layer against the real private broker (scripts/broker.sh).
final class AMQPBrokerTests: XCTestCase {
    func testPublishConsumeAckRoundTrip() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        let queue = try channel.declareQueue(TestBroker.uniqueName("rt"), durable: false, exclusive: true).name
        let properties = AMQPProperties(
            contentType: "application/json", headers: ["attempt": .int64(3), "who": "tests", "ok": true],
            deliveryMode: 2, correlationID: "corr-1", replyTo: "replies.client-1", expiration: "60000",
            messageID: "m-1", timestamp: 1_700_000_000)
        try channel.publish(exchange: "", routingKey: queue, body: Array("{\"hello\":1}".utf8), properties: properties)
        try channel.consume(queue: queue, consumerTag: "rt-consumer")
        let delivery = try XCTUnwrap(try connection.nextDelivery())
        XCTAssertEqual(delivery.body, Array("{\"hello\":1}".utf8))
        XCTAssertEqual(delivery.consumerTag, "rt-consumer")
        XCTAssertEqual(delivery.routingKey, queue)
        XCTAssertFalse(delivery.redelivered)
        XCTAssertEqual(delivery.properties, properties)
        try channel.ack(delivery.deliveryTag)
        // Nothing is left and nothing comes back.
        XCTAssertNil(try connection.nextDelivery(timeout: .milliseconds(300)))
        try channel.cancel(consumerTag: "rt-consumer")
        XCTAssertEqual(try channel.declareQueue(queue, durable: false, exclusive: true, passive: true).messageCount, 0)
    }

    func testNackWithRequeueRedelivers() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        let queue = try channel.declareQueue(TestBroker.uniqueName("nack"), durable: false, exclusive: true).name
        try channel.qos(prefetchCount: 1)
        try channel.publish(exchange: "", routingKey: queue, body: Array("again".utf8))
        try channel.consume(queue: queue)
        let first = try XCTUnwrap(try connection.nextDelivery())
        XCTAssertFalse(first.redelivered)
        try channel.nack(first.deliveryTag, requeue: true)
        let second = try XCTUnwrap(try connection.nextDelivery())
        XCTAssertTrue(second.redelivered)
        XCTAssertEqual(second.body, Array("again".utf8))
        try channel.ack(second.deliveryTag)
    }

    func testRejectWithoutRequeueDeadLetters() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        let dlx = TestBroker.uniqueName("dlx")
        try channel.declareExchange(dlx, type: "fanout", durable: false, autoDelete: true)
        let dead = try channel.declareQueue(TestBroker.uniqueName("dead"), durable: false, exclusive: true).name
        try channel.bindQueue(dead, exchange: dlx, routingKey: "")
        let work = try channel.declareQueue(
            TestBroker.uniqueName("work"), durable: false, exclusive: true,
            arguments: ["x-dead-letter-exchange": .string(dlx)]
        ).name
        try channel.publish(exchange: "", routingKey: work, body: Array("poison".utf8))
        try channel.consume(queue: work)
        let delivery = try XCTUnwrap(try connection.nextDelivery())
        try channel.reject(delivery.deliveryTag, requeue: false)
        try channel.consume(queue: dead)
        let deadLettered = try XCTUnwrap(try connection.nextDelivery())
        XCTAssertEqual(deadLettered.body, Array("poison".utf8))
        guard case .array(let deaths)? = deadLettered.properties.headers?["x-death"],
            case .table(let death)? = deaths.first
        else {
            return XCTFail("no x-death header: \(String(describing: deadLettered.properties.headers))")
        }
        XCTAssertEqual(death["reason"]?.stringValue, "rejected")
        XCTAssertEqual(death["queue"]?.stringValue, work)
    }

    func testConfirmsAckRoutableAndReturnUnroutableMandatory() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        try channel.enableConfirms()
        let queue = try channel.declareQueue(TestBroker.uniqueName("confirm"), durable: false, exclusive: true).name
        XCTAssertEqual(try channel.publishConfirmed(exchange: "", routingKey: queue, body: [1, 2, 3], mandatory: true), .ack)

        let exchange = TestBroker.uniqueName("nowhere")
        try channel.declareExchange(exchange, type: "direct", durable: false, autoDelete: false)
        defer { try? channel.deleteExchange(exchange) }
        let sequence = try channel.publish(exchange: exchange, routingKey: "no-binding", body: Array("lost?".utf8), mandatory: true)
        XCTAssertEqual(try channel.waitForConfirm(sequence), .ack)
        // The return came before the ack and was kept for the event loop.
        guard case .returned(let returned)? = try connection.nextEvent(timeout: .seconds(1)) else {
            return XCTFail("expected basic.return")
        }
        XCTAssertEqual(returned.replyCode, 312)
        XCTAssertEqual(returned.replyText, "NO_ROUTE")
        XCTAssertEqual(returned.body, Array("lost?".utf8))
        XCTAssertEqual(returned.routingKey, "no-binding")
    }

    func testManyConfirmsInFlight() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        try channel.enableConfirms()
        let queue = try channel.declareQueue(TestBroker.uniqueName("many"), durable: false, exclusive: true).name
        var sequences: [UInt64] = []
        for i in 0..<500 { sequences.append(try channel.publish(exchange: "", routingKey: queue, body: Array("\(i)".utf8))) }
        XCTAssertEqual(sequences, Array(1...500))
        for sequence in sequences.reversed() { XCTAssertEqual(try channel.waitForConfirm(sequence), .ack) }
        XCTAssertEqual(try channel.declareQueue(queue, durable: false, exclusive: true, passive: true).messageCount, 500)
    }

    func testIdleConnectionWithOneSecondHeartbeatStaysOpen() throws {
        let connection = try TestBroker.connect(heartbeat: .seconds(1))
        XCTAssertEqual(connection.negotiatedHeartbeat, .seconds(1))
        let channel = try connection.openChannel()
        let queue = try channel.declareQueue(TestBroker.uniqueName("idle"), durable: false, exclusive: true).name
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(5) {
            if case .connectionClosed(let error)? = try connection.nextEvent(timeout: .milliseconds(700)) {
                return XCTFail("connection closed while idle: \(error)")
            }
        }
        XCTAssertTrue(connection.isOpen)
        try channel.publish(exchange: "", routingKey: queue, body: [42])
        try channel.consume(queue: queue, noAck: true)
        XCTAssertEqual(try connection.nextDelivery()?.body, [42])
    }

    func testOwnerThatStopsCallingIsDetectedDead() throws {
        let connection = try TestBroker.connect(heartbeat: .seconds(1))
        _ = try connection.openChannel()
        // The owner neglects the connection: no heartbeats go out, so the broker gives up on us.
        Thread.sleep(forTimeInterval: 5)
        let resumed = ContinuousClock.now
        var closed: AMQPError?
        while closed == nil, ContinuousClock.now - resumed < .seconds(3) {
            if case .connectionClosed(let error)? = try connection.nextEvent(timeout: .milliseconds(200)) { closed = error }
        }
        let error = try XCTUnwrap(closed, "the dead connection was not detected within 3 s")
        XCTAssertTrue(error.isConnectionFatal)
        XCTAssertFalse(connection.isOpen)
        XCTAssertThrowsError(try connection.openChannel())
    }

    func testChannelErrorIs406AndTheConnectionGoesOn() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        let name = TestBroker.uniqueName("args")
        try channel.declareQueue(name, durable: false, autoDelete: true, arguments: ["x-max-length": 10])
        XCTAssertThrowsError(try channel.declareQueue(name, durable: false, autoDelete: true, arguments: ["x-max-length": 20])) { error in
            let error = error as! AMQPError
            XCTAssertEqual(error.kind, .channelClosed)
            XCTAssertEqual(error.replyCode, 406)
            XCTAssertTrue(error.message.contains("PRECONDITION_FAILED"), error.message)
        }
        XCTAssertThrowsError(try channel.publish(exchange: "", routingKey: name, body: [1]))
        XCTAssertTrue(connection.isOpen)
        let fresh = try connection.openChannel()
        XCTAssertEqual(try fresh.declareQueue(name, durable: false, autoDelete: true, passive: true).name, name)
        try fresh.deleteQueue(name)
    }

    func testAsynchronousChannelErrorBecomesAnEvent() throws {
        let connection = try TestBroker.connect()
        let channel = try connection.openChannel()
        try channel.publish(exchange: TestBroker.uniqueName("missing-exchange"), routingKey: "x", body: [1])
        guard case .channelClosed(let id, let code, let text)? = try connection.nextEvent(timeout: .seconds(2)) else {
            return XCTFail("expected channel.close")
        }
        XCTAssertEqual(id, channel.id)
        XCTAssertEqual(code, 404)
        XCTAssertTrue(text.contains("NOT_FOUND"), text)
        XCTAssertNoThrow(try connection.openChannel().declareQueue("", durable: false, exclusive: true))
    }

    func testWakeupFromAnotherThreadInterruptsTheWait() throws {
        let connection = try TestBroker.connect()
        let wakeup = connection.wakeup
        let start = ContinuousClock.now
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 0.1)
            wakeup.signal()
        }
        guard case .woken? = try connection.nextEvent(timeout: .seconds(5)) else { return XCTFail("expected .woken") }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
    }

    func testWrongPasswordUnknownVhostAndUnreachableHostAreClear() throws {
        let base = try AMQPConfiguration(url: TestBroker.url)
        var wrongPassword = base
        wrongPassword.password = "not-the-password-xyzzy"
        XCTAssertThrowsError(try AMQPConnection(configuration: wrongPassword)) { error in
            let error = error as! AMQPError
            XCTAssertEqual(error.kind, .authenticationFailed, error.description)
            XCTAssertEqual(error.replyCode, 403)
            XCTAssertFalse(error.description.contains("xyzzy"))
        }
        var unknownVhost = base
        unknownVhost.virtualHost = "no-such-vhost"
        XCTAssertThrowsError(try AMQPConnection(configuration: unknownVhost)) { error in
            let error = error as! AMQPError
            XCTAssertEqual(error.kind, .accessRefused, error.description)
            XCTAssertTrue(error.description.contains("no-such-vhost"))
            XCTAssertFalse(error.description.contains(base.password + "@"))
        }
        var closedPort = base
        closedPort.port = 1
        closedPort.password = "xyzzy-secret"
        XCTAssertThrowsError(try AMQPConnection(configuration: closedPort)) { error in
            let error = error as! AMQPError
            XCTAssertEqual(error.kind, .connectionFailed, error.description)
            XCTAssertFalse(error.description.contains("xyzzy"))
        }
    }
}
