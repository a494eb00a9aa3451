import AMQP
import BrokerTestSupport
import Foundation
import XCTest

/// TLS against the broker's TLS listener (PORT+1), whose CA and certificates scripts/broker.sh made.
final class AMQPTLSTests: XCTestCase {
    func url(ca: String, password: String = "guest") throws -> String {
        let dir = try TestBroker.directory()
        return "amqps://guest:\(password)@localhost:\(TestBroker.port + 1)/?cacertfile=\(dir)/tls/\(ca)"
    }

    func testVerifiedTLSRoundTrip() throws {
        let connection = try AMQPConnection(url: try url(ca: "ca.pem"))
        let channel = try connection.openChannel()
        let queue = try channel.declareQueue("", durable: false, exclusive: true).name
        try channel.enableConfirms()
        XCTAssertEqual(try channel.publishConfirmed(exchange: "", routingKey: queue, body: Array("over tls".utf8)), .ack)
        try channel.consume(queue: queue, noAck: true)
        XCTAssertEqual(try connection.nextDelivery()?.body, Array("over tls".utf8))
    }

    func testClientCertificateIsAccepted() throws {
        let dir = try TestBroker.directory()
        let connection = try AMQPConnection(url: try url(ca: "ca.pem") + "&certfile=\(dir)/tls/client.pem&keyfile=\(dir)/tls/client.key")
        XCTAssertNoThrow(try connection.openChannel())
    }

    func testAnotherCAFailsVerificationClearly() throws {
        XCTAssertThrowsError(try AMQPConnection(url: try url(ca: "other-ca.pem", password: "pw-xyzzy"))) { error in
            let error = error as! AMQPError
            XCTAssertEqual(error.kind, .tls, error.description)
            XCTAssertTrue(error.description.lowercased().contains("tls"), error.description)
            XCTAssertFalse(error.description.contains("xyzzy"))
        }
    }

    func testHostnameMismatchFails() throws {
        let dir = try TestBroker.directory()
        // The certificate names localhost only; 127.0.0.1 reaches the same listener under another name.
        let url = "amqps://guest:guest@127.0.0.1:\(TestBroker.port + 1)/?cacertfile=\(dir)/tls/ca.pem"
        guard (try? AMQPConfiguration(url: url)) != nil else { return XCTFail("bad url") }
        XCTAssertThrowsError(try AMQPConnection(url: url)) { error in
            XCTAssertEqual((error as! AMQPError).kind, .tls, "\(error)")
        }
    }
}
