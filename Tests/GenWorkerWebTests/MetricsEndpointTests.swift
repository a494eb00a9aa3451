import Foundation
import GenWorkerCore
import GenWorkerWeb
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import XCTest

/// The HTTP endpoint as a service: concurrent, IPv4 and IPv6, stopped with its group.
final class MetricsEndpointTests: XCTestCase {
    static func curl(_ url: String, timeout: String = "2") -> (status: Int, body: String) {
        guard let out = try? TestBroker.run("/usr/bin/curl", ["-g", "-s", "-m", timeout, "-w", "\n%{http_code}", url]) else { return (0, "") }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func testServesProbesConcurrentlyOnBothFamiliesAndStopsWithTheGroup() async throws {
        let ready = Atomic<Bool>(false)
        let port = Mutex<Int?>(nil)
        var configuration = WorkerConfiguration.MetricsSection()
        configuration.address = "::"
        configuration.port = 0
        let endpoint = MetricsEndpoint(
            configuration: configuration, unready: { ready.load(ordering: .relaxed) ? nil : "not consuming" },
            metrics: { "genworker_test_total 1\n" }, logger: Logger(label: "test"),
            onListening: { p in port.withLock { $0 = p } })
        let group = ServiceGroup(services: [endpoint], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let p = try XCTUnwrap(port.withLock { $0 })

        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/healthz").status, 200, "IPv4")
        XCTAssertEqual(Self.curl("http://[::1]:\(p)/healthz").status, 200, "IPv6")
        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/readyz").status, 503)
        ready.store(true, ordering: .relaxed)
        XCTAssertEqual(Self.curl("http://[::1]:\(p)/readyz").status, 200)
        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/metrics").body, "genworker_test_total 1\n")
        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/nope").status, 404)

        // A client that sends half a request and stalls must not hold up a probe.
        let stalled = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(stalled) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(p).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(stalled, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        _ = "GET /metr".withCString { write(stalled, $0, 9) }
        let started = ContinuousClock.now
        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/readyz", timeout: "1").status, 200, "Kubernetes' 1 s probe")
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(900))

        // Many at once.
        let statuses = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            let status = Self.curl("http://127.0.0.1:\(p)/healthz").status
            statuses.withLock { $0.append(status) }
        }
        XCTAssertEqual(statuses.withLock { $0 }, Array(repeating: 200, count: 16))

        await group.triggerGracefulShutdown()
        try await running.value
        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/healthz", timeout: "1").status, 0, "stopped with the group: nothing listens")
    }

    func testHealthzFailsWhileTheOwnerLoopIsStalled() async throws {
        let stalled = Mutex<Duration?>(nil)
        let port = Mutex<Int?>(nil)
        var configuration = WorkerConfiguration.MetricsSection()
        configuration.address = "127.0.0.1"
        configuration.port = 0
        let endpoint = MetricsEndpoint(
            configuration: configuration, unready: { nil }, stalled: { stalled.withLock { $0 } }, metrics: { "" },
            logger: Logger(label: "test"), onListening: { p in port.withLock { $0 = p } })
        let group = ServiceGroup(services: [endpoint], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let p = try XCTUnwrap(port.withLock { $0 })
        XCTAssertEqual(Self.curl("http://127.0.0.1:\(p)/healthz").status, 200)
        stalled.withLock { $0 = .seconds(75) }
        let wedged = Self.curl("http://127.0.0.1:\(p)/healthz")
        XCTAssertEqual(wedged.status, 503)
        XCTAssertEqual(wedged.body, "the owner loop has not turned for 75 s: wedged\n")
        await group.triggerGracefulShutdown()
        try await running.value
    }
}
