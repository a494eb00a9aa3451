import Foundation
import GenWorkerCore
import Supervision
import XCTest

final class JobValidatorTests: XCTestCase {
    var validator: JobValidator!
    var inputs: URL!

    override func setUpWithError() throws {
        inputs = FileManager.default.temporaryDirectory.appendingPathComponent("gw-in-\(UUID())")
        try FileManager.default.createDirectory(at: inputs.appendingPathComponent("pre"), withIntermediateDirectories: true)
        try Data("i".utf8).write(to: inputs.appendingPathComponent("a.png"))
        try Data("w".utf8).write(to: inputs.appendingPathComponent("a.wav"))
        var c = WorkerConfiguration()
        c.inputs.roots = [inputs.path]
        validator = JobValidator(configuration: c)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: inputs) }

    func validate(_ json: String) throws(JobRejection) -> JobRequest { try validator.validate(body: Array(json.utf8)) }

    func message(_ json: String) -> String {
        do {
            _ = try validate(json)
            return "accepted"
        } catch { return error.message }
    }

    func testWanRules() throws {
        XCTAssertEqual(
            try validate(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"p","size":"1280*720","frame_num":81}}"#).wanArguments,
            ["--frame_num", "81", "--prompt", "p", "--size", "1280*720"])
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"p","size":"1280*704"}}"#).contains("params.size"))
        XCTAssertEqual(message(#"{"id":"a","task":"ti2v-5B","params":{"prompt":"p","size":"1280*704"}}"#), "accepted")
        XCTAssertEqual(
            message(
                #"{"id":"a","task":"s2v-14B","params":{"prompt":"p","size":"1024*704","image":"\#(inputs.path)/a.png","audio":"\#(inputs.path)/a.wav"}}"#
            ), "accepted")
        XCTAssertTrue(
            message(#"{"id":"a","task":"s2v-14B","params":{"prompt":"p","image":"\#(inputs.path)/a.png"}}"#).contains("params.audio is required"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"p","frame_num":80}}"#).contains("4n+1"))
        XCTAssertTrue(
            message(#"{"id":"a","task":"animate-14B","params":{"prompt":"p","src_root_path":"\#(inputs.path)/pre"}}"#).contains(
                "params.prompt is not accepted"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"p","sample_solver":"euler"}}"#).contains("unipc, dpm++"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","params":{"prompt":""}}"#).contains("non-empty"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"a\u0000b"}}"#).contains("NUL"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","params":{"prompt":"p","base_seed":1e300}}"#).contains("whole number"))
    }

    func testAnimateGetsRefertNumOneUnlessTheJobSaysOtherwise() throws {
        let job = try validate(#"{"id":"a","task":"animate-14B","params":{"src_root_path":"\#(inputs.path)/pre"}}"#)
        XCTAssertEqual(Array(job.wanArguments.suffix(2)), ["--refert_num", "1"])
        let five = try validate(#"{"id":"a","task":"animate-14B","params":{"src_root_path":"\#(inputs.path)/pre","refert_num":5}}"#)
        XCTAssertEqual(five.wanArguments.filter { $0 == "--refert_num" }.count, 1)
        XCTAssertTrue(five.wanArguments.contains("5"))
    }

    func testIDsAndEnvelope() {
        for id in ["a.b", "a/b", String(repeating: "x", count: 129), "", "ü"] {
            let json = String(data: try! JSONSerialization.data(withJSONObject: ["id": id, "task": "t2v-A14B"]), encoding: .utf8)!
            XCTAssertTrue(message(json).contains("'id' must match"), id)
        }
        XCTAssertTrue(message("[1,2]").contains("JSON object"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","extra":1}"#).contains("unknown field 'extra'"))
        XCTAssertTrue(message(#"{"id":"a","task":"t2v-A14B","timeout_s":999999999}"#).contains("timeout_s"))
        XCTAssertTrue(message(String(repeating: "[", count: 100_000)).contains("not valid JSON"))
        do { _ = try validator.validate(body: Array("nope".utf8), fallbackID: "from-props") } catch {
            XCTAssertEqual(error.id, "from-props")
        }
    }

    func testPathsMustStayInsideTheRoots() throws {
        let link = inputs.appendingPathComponent("out.png")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/etc/hostname")
        for path in [
            "/etc/hostname", link.path, inputs.path + "/../" + inputs.lastPathComponent + "x/a.png", "relative.png", inputs.path + "/missing.png",
        ] {
            let json = #"{"id":"a","task":"i2v-A14B","params":{"prompt":"p","image":"\#(path)"}}"#
            XCTAssertNotEqual(message(json), "accepted", path)
        }
        XCTAssertEqual(message(#"{"id":"a","task":"i2v-A14B","params":{"prompt":"p","image":"\#(inputs.path)/pre/../a.png"}}"#), "accepted")
    }

    func testCancelMessages() {
        XCTAssertEqual(CancelMessage.read(Array(#"{"id":"job-1"}"#.utf8))?.id, "job-1")
        XCTAssertNil(CancelMessage.read(Array(#"{"id":"a.b"}"#.utf8))?.id)
        XCTAssertNil(CancelMessage.read(Array(#"{"marker":"x"}"#.utf8))?.id)
    }
}

extension JobRequest {
    /// generate.py's options for this job, as Wan/ builds them.
    var wanArguments: [String] { WanCommand.generateArguments(for: self) }
}
