import AMQP
import BrokerTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Broker loss on a second private node (port 5689), so the shared test broker is never disturbed.
final class AMQPBrokerLossTests: XCTestCase {
    let port = 5689
    var environment: [String: String] { ["GENWORKER_BROKER_PORT": String(port)] }

    override func setUpWithError() throws {
        try TestBroker.run(TestBroker.script, ["start"], environment: environment)
    }

    override func tearDownWithError() throws {
        try TestBroker.run(TestBroker.script, ["stop"], environment: environment)
    }

    func connect(heartbeat: Duration) throws -> AMQPConnection {
        var configuration = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:\(port)/")
        configuration.heartbeat = heartbeat
        return try AMQPConnection(configuration: configuration)
    }

    /// Loops the event loop until the connection is reported closed; returns how long that took.
    func timeUntilClosed(_ connection: AMQPConnection, limit: Duration) throws -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if case .connectionClosed? = try connection.nextEvent(timeout: .milliseconds(250)) {
                return ContinuousClock.now - start
            }
        }
        return nil
    }

    func testFrozenBrokerIsDetectedWithinTwoHeartbeats() throws {
        let heartbeat = Duration.seconds(2)
        let connection = try connect(heartbeat: heartbeat)
        _ = try connection.openChannel()
        let pidText = try String(contentsOfFile: try TestBroker.directory(port: port) + "/rabbit.pid", encoding: .utf8)
        let pid = try XCTUnwrap(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        // A frozen broker sends no FIN and no close: only missing heartbeats can tell.
        XCTAssertEqual(kill(pid, SIGSTOP), 0)
        defer { kill(pid, SIGCONT) }
        let elapsed = try XCTUnwrap(try timeUntilClosed(connection, limit: .seconds(10)), "a frozen broker went unnoticed for 10 s")
        print("frozen broker detected after \(elapsed)")
        XCTAssertLessThanOrEqual(elapsed, heartbeat * 2 + .milliseconds(300))
    }

    func testStoppedBrokerIsReportedAndANewConnectionWorksAfterRestart() throws {
        let heartbeat = Duration.seconds(2)
        let connection = try connect(heartbeat: heartbeat)
        let channel = try connection.openChannel()
        try channel.declareQueue("survivor", durable: true)
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [environment] in
            _ = try? TestBroker.run(TestBroker.script, ["stop"], environment: environment)
            stopped.signal()
        }
        let elapsed = try XCTUnwrap(try timeUntilClosed(connection, limit: .seconds(30)), "the stop was not reported")
        print("stopped broker reported after \(elapsed)")
        XCTAssertFalse(connection.isOpen)
        // Wait for the stop to finish, start again, and connect anew.
        XCTAssertEqual(stopped.wait(timeout: .now() + 60), .success)
        try TestBroker.run(TestBroker.script, ["start"], environment: environment)
        let again = try connect(heartbeat: heartbeat)
        let fresh = try again.openChannel()
        try fresh.enableConfirms()
        XCTAssertEqual(try fresh.declareQueue("survivor", durable: true, passive: true).name, "survivor")
        XCTAssertEqual(try fresh.publishConfirmed(exchange: "", routingKey: "survivor", body: [7]), .ack)
        try fresh.deleteQueue("survivor")
    }
}
