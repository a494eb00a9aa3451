import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// A deterministic generator (SplitMix64) so a failing case can be replayed from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Hostile messages of every kind a fuzzer or an attacker would send.
enum HostileMessages {
    static func make(_ index: Int, rng: inout SeededRandom, inputs: String) -> (body: [UInt8], id: String?) {
        let id = "h\(index)"
        func json(_ object: Any) -> [UInt8] { Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data()) }
        switch index % 14 {
        case 0: return ((0..<Int.random(in: 1...512, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, nil)
        case 1:
            let full = json(["id": id, "task": "t2v-A14B", "params": ["prompt": "p"]])
            return (Array(full.prefix(Int.random(in: 1..<full.count, using: &rng))), nil)
        case 2: return (Array((String(repeating: "[", count: 5000 + index % 3000) + String(repeating: "]", count: 5000 + index % 3000)).utf8), nil)
        case 3: return (json(["id": id, "task": "t2v-A14B", "params": ["prompt": String(repeating: "x", count: 30_000)]]), id)
        case 4: return (json(["id": id, "task": ["t2v-A14B"], "params": "prompt"]), id)
        case 5: return (json(["id": id, "task": "t2v-A14B", "params": ["prompt": "p"], "priority": 9]), id)
        case 6: return (json(["id": "a.b/c\(index)", "task": "t2v-A14B"]), nil)
        case 7: return (json(["id": String(repeating: "x", count: 10_000), "task": "t2v-A14B"]), nil)
        case 8: return (json(["id": id, "task": "i2v-A14B", "params": ["prompt": "p", "image": inputs + "/../../../etc/passwd"]]), id)
        case 9: return (Array(#"{"id":"\#(id)","task":"i2v-A14B","params":{"prompt":"p","image":"\#(inputs)/a\u0000.png"}}"#.utf8), id)
        case 10:
            return (
                json(["id": id, "task": "t2v-A14B", "params": ["prompt": "p", "sample_steps": -Int.random(in: 1...Int(Int32.max), using: &rng)]]), id
            )
        case 11:
            return (Array(#"{"id":"\#(id)","task":"t2v-A14B","params":{"prompt":"p","base_seed":1e308,"frame_num":99999999999999999999}}"#.utf8), id)
        case 12: return (json(["id": id, "task": "t2v-A14B", "params": ["prompt": "p", "sample_shift": "NaN", "size": "1*1"]]), id)
        default: return (json([id: [String](repeating: "z", count: 100)]), nil)
        }
    }
}

final class HostileFloodTests: XCTestCase {
    func testTenThousandMalformedMessagesAndA50MBBodyThenAValidJobRuns() throws {
        let harness = try WorkerHarness()
        defer { harness.tearDown() }
        try harness.startWorker(name: "fuzzed")
        let t = harness.configuration.topology
        var rng = SeededRandom(state: 2026)
        var withID = 0
        var last: UInt64 = 0
        let count = 10_000
        for index in 0..<count {
            let message = HostileMessages.make(index, rng: &rng, inputs: harness.inputs.path)
            if message.id != nil { withID += 1 }
            last = try harness.channel.publish(exchange: "", routingKey: t.jobsQueue, body: message.body, properties: .persistentJSON())
        }
        XCTAssertEqual(try harness.channel.waitForConfirm(last, timeout: .seconds(60)), .ack)
        let before = residentBytes()
        var big = AMQPProperties.persistentJSON()
        big.messageID = "huge-body"
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 50 << 20)
        XCTAssertEqual(
            try harness.channel.publishConfirmed(
                exchange: "", routingKey: t.jobsQueue, body: huge, properties: big,
                timeout: .seconds(60)), .ack)
        try harness.submit(id: "after-the-storm")
        let result = try harness.result("after-the-storm", timeout: 300)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(try harness.result("huge-body").reason, .invalidJob)
        let growth = residentBytes() - before
        print("hostile flood: \(count) messages (\(withID) with a readable id) + 50 MB; resident growth \(growth >> 20) MiB")
        XCTAssertLessThan(growth, 300 << 20, "memory grew by \(growth >> 20) MiB")
        let dead = try harness.channel.declareQueue(t.deadQueue, passive: true, arguments: ["x-queue-type": "quorum"])
        XCTAssertEqual(dead.messageCount, UInt32(count + 1), "every malformed message must be dead-lettered")
    }

    func testTheValidatorSurvivesAHundredThousandRandomInputs() {
        var configuration = WorkerConfiguration()
        configuration.inputs.roots = ["/tmp"]
        let validator = JobValidator(configuration: configuration)
        var rng = SeededRandom(state: 7)
        let fragments = [
            #"{"id":"#, #""a""#, #","task":"#, #""t2v-A14B""#, #","params":{"#, #""prompt":"#, #"1"#, "[", "]", "{", "}",
            #""size":"#, #""1280*720""#, ",", ":", "null", "true", "-1e999", #""\u0000""#, #""../""#, #""frame_num":81"#,
        ]
        var accepted = 0
        for round in 0..<100_000 {
            var body: [UInt8]
            if round % 2 == 0 {
                body = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                body = Array((0..<Int.random(in: 1...24, using: &rng)).map { _ in fragments.randomElement(using: &rng)! }.joined().utf8)
            }
            do {
                let job = try validator.validate(body: body)
                XCTAssertTrue(JobValidator.isValidID(job.id))
                accepted += 1
            } catch {
                XCTAssertFalse(error.message.isEmpty)
                if let id = error.id { XCTAssertTrue(JobValidator.isValidID(id)) }
            }
        }
        print("validator fuzz: 100000 inputs, \(accepted) accepted")
    }
}
