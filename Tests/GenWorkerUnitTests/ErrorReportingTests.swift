import Foundation
import GenWorkerCore
import Supervision
import TestSupport
import XCTest

/// The command line reports runtime failures as what they are: one line, the URL without
/// its password, what to try, a sysexits code; usage errors keep the usage text and 64.
/// No broker is needed: these are the cases where there is none.
final class ErrorReportingTests: XCTestCase {
    var executable: String { TestBroker.genworkerExecutable }

    /// Runs `genworker` with no config file in reach; returns (exit code, stdout, stderr).
    func genworker(_ arguments: [String]) throws -> (code: Int32, out: String, err: String) {
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("gw-err-\(UUID())").path
        defer { unlink(errPath) }
        let cwd = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath("/")  // no config/genworker.yaml here
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        let (status, out) = try TestBroker.runCapturing(executable, arguments, environment: ["GENWORKER_AMQP_URL": ""], stderrPath: errPath)
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return ((status >> 8) & 0xff, out, err)
    }

    func testABrokerThatIsDownIsReportedAsSuch() throws {
        let result = try genworker(["submit", "--task", "t2v-A14B", "--param", "prompt=a fox", "--url", "amqp://guest:s3cret@127.0.0.1:1/"])
        XCTAssertEqual(result.code, 69, result.err)
        XCTAssertEqual(result.err.split(separator: "\n").count, 1, result.err)
        XCTAssertTrue(result.err.hasPrefix("genworker: cannot reach the broker at amqp://guest:***@127.0.0.1:1/"), result.err)
        XCTAssertTrue(result.err.contains("make broker"), result.err)
        XCTAssertFalse(result.err.contains("s3cret"))
        XCTAssertFalse(result.err.contains("Usage"))
        for command in [["cancel", "job-1"], ["watch"], ["declare"]] {
            let other = try genworker(command + ["--url", "amqp://u:pw@127.0.0.1:1/"])
            XCTAssertEqual(other.code, 69, "\(command): \(other.err)")
            XCTAssertFalse(other.err.contains("pw@"), other.err)
        }
    }

    func testAPortAlreadyTakenIsReportedAsSuch() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        XCTAssertEqual(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) } }, 0)
        XCTAssertEqual(listen(holder, 1), 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("gw-port-\(UUID()).yaml").path
        defer { unlink(config) }
        try "amqp:\n  url: amqp://guest:guest@127.0.0.1:1/\nmetrics:\n  address: 127.0.0.1\n  port: \(port)\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let result = try genworker(["run", "--config", config])
        XCTAssertEqual(result.code, 71, result.err)
        let line = try XCTUnwrap(result.err.split(separator: "\n").last { $0.hasPrefix("genworker: ") }, result.err)
        XCTAssertTrue(line.contains("cannot serve /metrics on 127.0.0.1:\(port)"), String(line))
        XCTAssertTrue(line.contains("metrics.port"), String(line))
        XCTAssertFalse(result.err.contains("Usage"))
    }

    func testABadConfigIsAConfigurationError() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("gw-bad-\(UUID()).yaml").path
        defer { unlink(config) }
        try "worker:\n  slots: 0\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = try genworker(["run", "--config", config])
        XCTAssertEqual(result.code, 78, result.err)
        XCTAssertEqual(result.err, "genworker: worker.slots must be a whole number from 1 to 64, not 0\n")
    }

    func testBadArgumentsStayUsageErrors() throws {
        let result = try genworker(["submit"])
        XCTAssertEqual(result.code, 64)
        XCTAssertTrue(result.err.contains("Usage: genworker submit"), result.err)
        let shutdown = try genworker(["run", "--shutdown", "later"])
        XCTAssertEqual(shutdown.code, 64, shutdown.err)
    }

    func testURLsAreShownWithoutTheirPassword() {
        XCTAssertEqual(GenWorkerError.redacted(url: "amqp://u:p%40ss@h:5672/v"), "amqp://u:***@h:5672/v")
        XCTAssertEqual(GenWorkerError.redacted(url: "amqps://user@h/"), "amqps://user@h/")
        XCTAssertEqual(GenWorkerError.redacted(url: "amqp://h/"), "amqp://h/")
    }
}
