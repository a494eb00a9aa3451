import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import Logging
import Synchronization
import XCTest

/// The dashboard's follower: a command sent after it stopped is answered, not left waiting.
final class FleetFollowerTests: XCTestCase {
    func testACommandSentAfterTheFollowerStoppedIsRefusedAtOnce() async throws {
        let harness = try WorkerHarness()
        defer { harness.tearDown() }
        let view = FleetView(retention: 3600, maxJobs: 100)
        let follower = FleetFollower(configuration: harness.configuration, view: view, logger: Logger(label: "follower-test"))
        let running = Task { try await follower.run() }
        let deadline = Date().addingTimeInterval(20)
        while !view.health.connected {
            guard Date() < deadline else { return XCTFail("the follower did not connect") }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await follower.send(.cancel(id: "while-running", user: "tester"))  // confirmed by the broker
        running.cancel()
        _ = try? await running.value
        // After the stop: answered with an error at once (before, it waited for ever).
        let answered = Atomic<Int>(0)
        let late = Task {
            do { try await follower.send(.cancel(id: "after-stop", user: "tester")) } catch {
                answered.store((error as? GenWorkerError)?.code == .brokerFailed ? 1 : 2, ordering: .relaxed)
            }
        }
        let until = Date().addingTimeInterval(5)
        while answered.load(ordering: .relaxed) == 0, Date() < until { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertEqual(answered.load(ordering: .relaxed), 1, "a command after the stop must fail with brokerFailed, promptly")
        if answered.load(ordering: .relaxed) == 0 { late.cancel() }
    }
}
