import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// `cancel.authorize`: a cancel counts only from the job's submitter or an admin, as the broker
/// vouches for them (AMQP user_id). Two real broker users besides an admin.
final class CancelAuthorizationTests: XCTestCase {
    func ctl(_ arguments: [String]) { _ = try? TestBroker.run(TestBroker.script, ["ctl", "-q"] + arguments) }

    func addUser(_ name: String) {
        ctl(["delete_user", name])
        ctl(["add_user", name, "\(name)-pw"])
        ctl(["set_permissions", "-p", "/", name, ".*", ".*", ".*"])
    }

    func channel(as user: String) throws -> (AMQPConnection, AMQPChannel) {
        var configuration = try AMQPConfiguration(url: TestBroker.url)
        configuration.user = user
        configuration.password = "\(user)-pw"
        let connection = try AMQPConnection(configuration: configuration)
        let channel = try connection.openChannel()
        try channel.enableConfirms()
        return (connection, channel)
    }

    func testOnlyTheSubmitterOrAnAdminMayCancel() throws {
        for user in ["alice", "mallory", "ops"] { addUser(user) }
        let harness = try WorkerHarness {
            $0.cancel.authorize = true
            $0.cancel.admins = ["ops"]
        }
        defer { harness.tearDown() }
        let (_, alice) = try channel(as: "alice")
        let (_, mallory) = try channel(as: "mallory")
        let (_, ops) = try channel(as: "ops")
        let t = harness.configuration.topology

        func submit(_ id: String, steps: Int, stepSeconds: Double) throws {
            var properties = AMQPProperties.persistentJSON()
            properties.userID = "alice"
            let body = WorkerHarness.jobBody(id: id, prompt: "p [[step_s=\(stepSeconds)]]", params: ["sample_steps": .int(Int64(steps))])
            XCTAssertEqual(try alice.publishConfirmed(exchange: t.jobsExchange, routingKey: "t2v-A14B", body: body, properties: properties), .ack)
        }
        func cancel(_ id: String, on channel: AMQPChannel, as user: String?) throws {
            var properties = AMQPProperties.persistentJSON()
            properties.userID = user
            XCTAssertEqual(
                try channel.publishConfirmed(
                    exchange: t.cancelExchange, routingKey: "", body: try ProtocolCoding.encode(CancelMessage(id: id)),
                    properties: properties), .ack)
        }

        // A queued job cancelled by someone else still runs.
        try submit("queued-by-alice", steps: 5, stepSeconds: 0.01)
        try cancel("queued-by-alice", on: mallory, as: "mallory")
        try harness.startWorker(name: "guarded")
        XCTAssertEqual(try harness.result("queued-by-alice").status, .completed)

        // A running job: mallory's cancel (and an unnamed one) is ignored; the admin's counts.
        try submit("running-by-alice", steps: 40, stepSeconds: 0.25)
        let pid = try harness.waitUntilRunning("running-by-alice")
        try cancel("running-by-alice", on: mallory, as: "mallory")
        try cancel("running-by-alice", on: mallory, as: nil)
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertTrue(processIsAlive(pid), "an unauthorised cancel stopped the job")
        try cancel("running-by-alice", on: ops, as: "ops")
        XCTAssertEqual(try harness.result("running-by-alice").reason, .cancelledWhileRunning)

        // The submitter may cancel her own job.
        try submit("own-by-alice", steps: 40, stepSeconds: 0.25)
        _ = try harness.waitUntilRunning("own-by-alice")
        try cancel("own-by-alice", on: alice, as: "alice")
        XCTAssertEqual(try harness.result("own-by-alice").reason, .cancelledWhileRunning)

        // The broker itself refuses a forged user_id: mallory cannot pretend to be alice.
        var forged = AMQPProperties.persistentJSON()
        forged.userID = "alice"
        XCTAssertThrowsError(
            try mallory.publishConfirmed(
                exchange: t.cancelExchange, routingKey: "",
                body: try ProtocolCoding.encode(CancelMessage(id: "x")), properties: forged))
    }
}
