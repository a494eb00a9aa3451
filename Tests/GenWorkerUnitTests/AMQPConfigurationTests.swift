import AMQPTypes
import XCTest

final class AMQPConfigurationTests: XCTestCase {
    func testParsesAFullURL() throws {
        let c = try AMQPConfiguration(
            url: "amqp://bob:s%40cret@broker.example:5673/jobs%2fprod?heartbeat=5&connection_name=w1&connection_timeout=2500")
        XCTAssertEqual(c.host, "broker.example")
        XCTAssertEqual(c.port, 5673)
        XCTAssertEqual(c.user, "bob")
        XCTAssertEqual(c.password, "s@cret")
        XCTAssertEqual(c.virtualHost, "jobs/prod")
        XCTAssertEqual(c.heartbeat, .seconds(5))
        XCTAssertEqual(c.connectionName, "w1")
        XCTAssertEqual(c.connectTimeout, .milliseconds(2500))
        XCTAssertNil(c.tls)
    }

    func testDefaults() throws {
        let c = try AMQPConfiguration(url: "amqp://localhost")
        XCTAssertEqual(c.port, 5672)
        XCTAssertEqual(c.virtualHost, "/")
        XCTAssertEqual(c.user, "guest")
        let tls = try AMQPConfiguration(url: "amqps://h/?cacertfile=/ca.pem&verify=verify_peer")
        XCTAssertEqual(tls.port, 5671)
        XCTAssertEqual(tls.tls?.caCertificateFile, "/ca.pem")
        XCTAssertEqual(tls.tls?.verifyPeer, true)
        XCTAssertEqual(tls.tls?.verifyHostname, true)
    }

    func testBadURLsAreClearAndNeverShowThePassword() {
        let cases = [
            "http://u:topsecret@h/",
            "amqp://u:topsecret@h:99999/",
            "amqp://u:topsecret@h/?heartbeat=soon",
            "amqp://u:topsecret@h/?cacertfile=/x",
            "amqp://u:topsecret@h/?bogus=1",
            "amqp://u:topsecret@h/a/b",
            "not a url at all topsecret",
        ]
        for url in cases {
            XCTAssertThrowsError(try AMQPConfiguration(url: url), url) { error in
                let error = error as! AMQPError
                XCTAssertEqual(error.kind, .invalidURL, url)
                XCTAssertFalse(error.description.contains("topsecret"), error.description)
            }
        }
    }

    func testDescriptionHidesThePassword() throws {
        let c = try AMQPConfiguration(url: "amqp://bob:hunter2@h:5672/v")
        XCTAssertEqual(c.description, "amqp://bob:***@h:5672/v")
    }
}
