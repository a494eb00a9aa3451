import Foundation
import XCTest

@testable import GenWorkerCore
@testable import Supervision

final class WorkerIdentityLockTests: XCTestCase {
    func configuration(_ name: String, queue: String = "q", directory: String) -> WorkerConfiguration {
        var c = WorkerConfiguration()
        c.worker.name = name
        c.topology.jobsQueue = queue
        c.worker.lockDir = directory
        return c
    }

    func testOneLiveWorkerPerNameAndQueue() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("locks-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try WorkerIdentityLock.acquire(configuration: configuration("gpu-0", directory: directory))
        XCTAssertEqual(try String(contentsOfFile: first.path, encoding: .utf8), "\(getpid())\n")
        XCTAssertThrowsError(try WorkerIdentityLock.acquire(configuration: configuration("gpu-0", directory: directory))) { error in
            let error = error as? GenWorkerError
            XCTAssertEqual(error?.code, .identityInUse)
            XCTAssertTrue(error?.description.contains("(pid \(getpid()))") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.description.contains("GENWORKER_WORKER_NAME") ?? false)
        }
        // Other names, or the same name on another queue, are other identities.
        let other = try WorkerIdentityLock.acquire(configuration: configuration("gpu-1", directory: directory))
        let otherQueue = try WorkerIdentityLock.acquire(configuration: configuration("gpu-0", queue: "q2", directory: directory))
        first.release()
        let again = try WorkerIdentityLock.acquire(configuration: configuration("gpu-0", directory: directory))
        for lock in [other, otherQueue, again] { lock.release() }
    }

    func testClusterURLsFromTheEnvironmentAndTheFile() throws {
        var c = try WorkerConfiguration.load(path: nil, environment: ["GENWORKER_AMQP_URL": "amqp://a@n1/, amqp://a@n2/,amqp://a@n3/"])
        XCTAssertEqual(c.amqp.endpoints, ["amqp://a@n1/", "amqp://a@n2/", "amqp://a@n3/"])
        c.amqp.setEndpoints("amqp://one/")
        XCTAssertEqual(c.amqp.endpoints, ["amqp://one/"])
        let file = try WorkerConfiguration.parse(yaml: "amqp:\n  urls: [amqp://x@a/, amqp://x@b/]\n")
        XCTAssertEqual(file.amqp.endpoints, ["amqp://x@a/", "amqp://x@b/"])
        XCTAssertThrowsError(try WorkerConfiguration.parse(yaml: "amqp:\n  url: amqp://a/\n  urls: [amqp://b/]\n")) { error in
            XCTAssertTrue("\(error)".contains("not both"), "\(error)")
        }
        var bad = WorkerConfiguration()
        bad.amqp.urls = ["amqp://ok/", "http://nope/"]
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("amqp.urls"), "\($0)") }
    }
}
