import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Supervision
import XCTest

/// The fleet's guarantees on a real three-node RabbitMQ cluster (scripts/cluster.sh), with
/// the stand-in generator: runs survive node restarts, a dead or frozen worker's job runs
/// again once, an id runs once, poison jobs end, and the CLI answers from the ledger.
final class FleetLedgerTests: XCTestCase {
    static let script = TestBroker.repositoryRoot.appendingPathComponent("scripts/cluster.sh").path
    nonisolated(unsafe) static var startFailure: Error?
    nonisolated(unsafe) static var urls: [String] = []

    override class func setUp() {
        super.setUp()
        do {
            _ = try TestBroker.run(script, ["start"])
            urls = try TestBroker.run(script, ["urls"]).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map(String.init)
        } catch { startFailure = error }
    }

    override class func tearDown() {
        _ = try? TestBroker.run(script, ["stop"])
        super.tearDown()
    }

    var harness: WorkerHarness!
    var spawned: [pid_t] = []

    /// A harness whose client talks to node `clientNode` and whose workers know every node.
    func makeHarness(lease: Double, clientNode: Int = 1, _ configure: (inout WorkerConfiguration) -> Void = { _ in }) throws -> WorkerHarness {
        if let failure = Self.startFailure { throw failure }
        // A node restarted by an earlier test may still be joining.
        for node in 1...3 { _ = try? TestBroker.run(Self.script, ["ctl", String(node), "await_startup"]) }
        let urls = Self.urls
        harness = try WorkerHarness {
            $0.amqp.url = urls[clientNode]
            $0.amqp.urls = urls
            $0.amqp.reconnectMaxSeconds = 1
            $0.jobs.leaseSeconds = lease
            configure(&$0)
        }
        return harness
    }

    override func tearDown() {
        for pid in spawned {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
            _ = harness?.waitForExit(pid, timeout: 10)
        }
        harness?.tearDown()
    }

    func spawn(_ name: String) throws -> pid_t {
        let pid = try harness.spawnWorkerProcess(name: name)
        spawned.append(pid)
        return pid
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: harness.root.appendingPathComponent("\(name).log").path, encoding: .utf8)) ?? ""
    }

    /// The ledger's view of `id`, read through any node that answers.
    func status(_ id: String) throws -> LedgerState.Job? {
        for url in Self.urls {
            guard let connection = try? AMQPConnection(url: url) else { continue }
            defer { connection.close() }
            return try LedgerReader.read(connection: connection, configuration: harness.configuration).jobs[id]
        }
        throw TestSupportError("no node answers")
    }

    /// Every terminal result in the results queue for `ids` within `timeout`, read through
    /// a fresh connection to any node (the harness's own may have died with its node).
    func results(_ ids: Set<String>, timeout: TimeInterval, settle: TimeInterval = 3) throws -> [String: [JobEvent]] {
        var got: [String: [JobEvent]] = [:]
        let deadline = Date().addingTimeInterval(timeout)
        var quietUntil: Date?
        while Date() < deadline {
            guard let connection = Self.urls.lazy.compactMap({ try? AMQPConnection(url: $0) }).first else {
                Thread.sleep(forTimeInterval: 0.5)
                continue
            }
            defer { connection.close() }
            do {
                let channel = try connection.openChannel()
                try channel.consume(queue: harness.configuration.topology.resultsQueue)
                while Date() < deadline {
                    if let quietUntil, Date() > quietUntil { return got }
                    if case .delivery(let d)? = try connection.nextEvent(timeout: .milliseconds(200)) {
                        try channel.ack(d.deliveryTag)
                        let event = try JobEvent.decode(d.body)
                        got[event.id, default: []].append(event)
                    }
                    if quietUntil == nil, Set(got.keys).isSuperset(of: ids) { quietUntil = Date().addingTimeInterval(settle) }
                }
            } catch {
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
        return got
    }

    // MARK: - Node restarts

    func testARollingRestartOfEveryNodeKillsNoRun() throws {
        let harness = try makeHarness(lease: 30)
        try harness.startWorker(name: "roll-a") { $0.worker.slots = 2 }
        try harness.startWorker(name: "roll-b") { $0.worker.slots = 2 }
        let ids = (1...4).map { "roll-\($0)" }
        for id in ids { try harness.submit(id: id, prompt: "long [[step_s=0.5]]", params: ["sample_steps": 70]) }
        var pids: [String: Int32] = [:]
        for id in ids { pids[id] = try harness.waitUntilRunning(id, timeout: 30) }
        for node in ["1", "2", "3"] {
            try TestBroker.run(Self.script, ["restart-node", node])
            for id in ids { XCTAssertTrue(processIsAlive(pids[id]!), "\(id)'s generator died with node \(node)") }
        }
        let got = try results(Set(ids), timeout: 90)
        for id in ids {
            XCTAssertEqual(got[id]?.count, 1, "\(id): one result")
            XCTAssertEqual(got[id]?.first?.status, .completed, "\(id)")
            XCTAssertEqual(harness.standinRecord(id)?.pid, pids[id], "\(id) ran again")
            XCTAssertEqual(try status(id)?.attempts.count, 1, "\(id): one attempt")
        }
    }

    func testWorkersFailOverWhenANodeStopsForGoodAndTheRunGoesOn() throws {
        let harness = try makeHarness(lease: 30)
        let worker = try harness.startWorker(name: "over") { $0.amqp.urls = Self.urls }
        try harness.submit(id: "across", prompt: "steady [[step_s=0.1]]", params: ["sample_steps": 60])
        let pid = try harness.waitUntilRunning("across")
        try TestBroker.run(Self.script, ["stop-node", "1"])
        defer { _ = try? TestBroker.run(Self.script, ["start-node", "1"]) }
        let deadline = Date().addingTimeInterval(30)
        while !worker.isConsuming, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertTrue(processIsAlive(pid) || harness.standinRecord("across")?.pid == pid)
        let across = try harness.result("across", timeout: 60)
        XCTAssertEqual(across.status, .completed)
        XCTAssertEqual(across.redelivered, false, "the run went on; it did not start again")
        XCTAssertEqual(harness.standinRecord("across")?.pid, pid)
        try harness.submit(id: "after-stop")
        XCTAssertEqual(try harness.result("after-stop").status, .completed)
    }

    // MARK: - Workers that die or freeze

    func testAKilledWorkersJobRunsAgainAfterTheLeaseOnce() throws {
        let harness = try makeHarness(lease: 6)
        let doomed = try spawn("doomed")
        try harness.submit(id: "orphan", prompt: "long [[step_s=0.1]]", params: ["sample_steps": 60])
        let first = try harness.waitUntilRunning("orphan")
        try harness.startWorker(name: "heir")
        let killedAt = Date()
        kill(doomed, SIGKILL)
        _ = harness.waitForExit(doomed)
        XCTAssertNotNil(harness.waitUntilGone(harness.ownerMarker("doomed")), "the watchdog killed the dead worker's generator")
        harness.forgetStandinRecord("orphan")
        let second = try harness.waitUntilRunning("orphan", timeout: 30)
        let after = Date().timeIntervalSince(killedAt)
        XCTAssertNotEqual(first, second)
        XCTAssertGreaterThan(after, 3, "taken over before the lease could have ended")
        XCTAssertLessThan(after, 6 + 6, "taken over about a lease after the death")
        let result = try harness.result("orphan", timeout: 60)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "heir")
        let job = try XCTUnwrap(try status("orphan"))
        XCTAssertEqual(job.attempts.map(\.outcome), [.expired, .ended])
        XCTAssertThrowsError(try harness.result("orphan-second-probe", timeout: 2))
    }

    func testAFrozenWorkerStopsItsRunAndPublishesNothing() throws {
        let harness = try makeHarness(lease: 6)
        let frozen = try spawn("frozen")
        try harness.submit(id: "icy", prompt: "long [[step_s=0.1]]", params: ["sample_steps": 80])
        let first = try harness.waitUntilRunning("icy")
        try harness.startWorker(name: "thaw")
        kill(frozen, SIGSTOP)
        harness.forgetStandinRecord("icy")
        let second = try harness.waitUntilRunning("icy", timeout: 30)
        XCTAssertNotEqual(first, second)
        XCTAssertFalse(processIsAlive(first), "two runs at once: the frozen worker's generator outlived its lease")
        kill(frozen, SIGCONT)
        let result = try harness.result("icy", timeout: 60)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "thaw")
        Thread.sleep(forTimeInterval: 2)
        XCTAssertThrowsError(try harness.result("icy-probe", timeout: 1), "only one result for icy (result() fails on a second)")
        let text = log("frozen")
        XCTAssertTrue(text.contains("another attempt") || text.contains("no renewal"), text)
        XCTAssertFalse(text.contains("job=icy [GenWorker] completed"), text)
    }

    func testAJobWhoseOwnerDiedWithNoOtherWorkerRunsWhenOneStarts() throws {
        let harness = try makeHarness(lease: 5)
        let lonely = try spawn("lonely")
        try harness.submit(id: "waiting", prompt: "long [[step_s=0.1]]", params: ["sample_steps": 40])
        _ = try harness.waitUntilRunning("waiting")
        kill(lonely, SIGKILL)
        _ = harness.waitForExit(lonely)
        Thread.sleep(forTimeInterval: 7)  // longer than the lease, with no worker at all
        try harness.startWorker(name: "late")
        let result = try harness.result("waiting", timeout: 60)
        XCTAssertEqual(result.status, .completed)
        XCTAssertEqual(result.worker, "late")
        XCTAssertEqual(try status("waiting")?.attempts.count, 2)
    }

    func testAPoisonJobFailsAtTheDeliveryLimit() throws {
        let harness = try makeHarness(lease: 4) { $0.topology.deliveryLimit = 2 }
        try harness.submit(id: "poison", prompt: "kills its worker [[step_s=0.1]]", params: ["sample_steps": 100])
        // Each worker that runs it dies (here: the test kills it, as a generator that takes the machine down would).
        for round in 1...2 {
            let victim = try spawn("victim-\(round)")
            _ = try harness.waitUntilRunning("poison", timeout: 30)
            kill(victim, SIGKILL)
            _ = harness.waitForExit(victim)
            harness.forgetStandinRecord("poison")
        }
        try harness.startWorker(name: "judge")
        let result = try harness.result("poison", timeout: 60)
        XCTAssertEqual(result.status, .failed)
        XCTAssertEqual(result.reason, .deliveryLimit)
        XCTAssertNil(harness.standinRecord("poison"), "not run a third time")
        XCTAssertEqual(try status("poison")?.expiries, 2)
    }

    // MARK: - One id, one run

    func testTheSameIDThreeTimesRunsOnceAndEverySubmitterGetsTheResult() throws {
        let harness = try makeHarness(lease: 30)
        let replies = (1...4).map { "\(harness.prefix).reply-\($0)" }
        for queue in replies { _ = try harness.channel.declareQueue(queue, durable: true, exclusive: false, autoDelete: false) }
        defer { for queue in replies { _ = try? harness.channel.deleteQueue(queue) } }
        let body = WorkerHarness.jobBody(id: "twice", prompt: "once [[step_s=0.1]]", params: ["sample_steps": 30])
        // Queued twice before any worker runs.
        try harness.submit(body, replyTo: replies[0], correlationID: "c1")
        try harness.submit(body, replyTo: replies[1], correlationID: "c2")
        try harness.startWorker(name: "single")
        let pid = try harness.waitUntilRunning("twice")
        try harness.submit(body, replyTo: replies[2], correlationID: "c3")  // while it runs
        XCTAssertEqual(try harness.result("twice", timeout: 60).status, .completed)
        try harness.submit(body, replyTo: replies[3], correlationID: "c4")  // after it ended
        for (index, queue) in replies.enumerated() {
            let got = try harness.peek(queue: queue, expecting: 2, timeout: 5)
            XCTAssertEqual(got.count, 1, "\(queue): one reply")
            XCTAssertEqual(got.first?.properties.correlationID, "c\(index + 1)")
            XCTAssertEqual(try got.first.map { try JobEvent.decode($0.body).status }, .completed)
        }
        XCTAssertEqual(harness.standinRecord("twice")?.pid, pid)
        XCTAssertEqual(try status("twice")?.attempts.count, 1)
    }

    func testACancelledIDStaysCancelled() throws {
        let harness = try makeHarness(lease: 30)
        try harness.startWorker(name: "keeper")
        try harness.submit(id: "nope", prompt: "long [[step_s=0.1]]", params: ["sample_steps": 100])
        _ = try harness.waitUntilRunning("nope")
        try harness.cancel("nope")
        XCTAssertEqual(try harness.result("nope").status, .cancelled)
        let reply = "\(harness.prefix).reply-again"
        _ = try harness.channel.declareQueue(reply, durable: true, exclusive: false, autoDelete: false)
        defer { _ = try? harness.channel.deleteQueue(reply) }
        try harness.submit(WorkerHarness.jobBody(id: "nope"), replyTo: reply)
        let again = try harness.peek(queue: reply, expecting: 1)
        XCTAssertEqual(try again.first.map { try JobEvent.decode($0.body).status }, .cancelled)
    }

    // MARK: - Asking the fleet

    func testStatusJobsWatchAndWorkersAnswerFromTheLedger() throws {
        let harness = try makeHarness(lease: 30)
        let pid = try spawn("asked")
        _ = pid
        try harness.submit(id: "asked-done")
        XCTAssertEqual(try harness.result("asked-done").status, .completed)
        try harness.submit(id: "asked-running", prompt: "long [[step_s=0.2]]", params: ["sample_steps": 100])
        _ = try harness.waitUntilRunning("asked-running")
        let config = try harness.writeConfigFile(name: "cli")
        func cli(_ arguments: [String]) throws -> (status: Int32, out: String) {
            let errors = harness.root.appendingPathComponent("cli.err").path
            let run = try TestBroker.runCapturing(TestBroker.genworkerExecutable, arguments + ["--config", config], stderrPath: errors)
            return ((run.status >> 8) & 0xff, run.output + ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""))
        }
        let done = try cli(["status", "asked-done"])
        XCTAssertEqual(done.status, 0)
        let doneJSON = try JSONSerialization.jsonObject(with: Data(done.out.utf8)) as? [String: Any]
        XCTAssertEqual(doneJSON?["state"] as? String, "ended")
        XCTAssertEqual((doneJSON?["result"] as? [String: Any])?["status"] as? String, "completed")
        // Renewals carry the progress: wait for one.
        Thread.sleep(forTimeInterval: 8)
        let running = try cli(["status", "asked-running"])
        let runningJSON = try JSONSerialization.jsonObject(with: Data(running.out.utf8)) as? [String: Any]
        XCTAssertEqual(runningJSON?["state"] as? String, "running")
        XCTAssertEqual(runningJSON?["worker"] as? String, "asked")
        XCTAssertEqual(runningJSON?["attempt"] as? Int, 1)
        XCTAssertNotNil(runningJSON?["progress"], running.out)
        let unknown = try cli(["status", "never-submitted"])
        XCTAssertEqual(unknown.status, 3)
        XCTAssertTrue(unknown.out.contains("no job 'never-submitted'"), unknown.out)
        let jobs = try cli(["jobs"]).out.split(separator: "\n")
        XCTAssertEqual(jobs.count, 2, jobs.joined(separator: "\n"))
        XCTAssertTrue(jobs.first?.contains("asked-running") ?? false, "newest first")
        let runningOnly = try cli(["jobs", "--state", "running"]).out.split(separator: "\n")
        XCTAssertEqual(runningOnly.count, 1)
        XCTAssertEqual(try cli(["jobs", "--state", "bogus"]).status, 64)
        let watched = try cli(["watch", "asked-done"])
        XCTAssertEqual(watched.status, 0)
        XCTAssertTrue(watched.out.contains(#""status":"completed""#), watched.out)
        let workers = try cli(["workers"]).out
        let row = try XCTUnwrap(workers.split(separator: "\n").first { $0.contains(#""name":"asked""#) }, workers)
        XCTAssertTrue(row.contains(#""running":["asked-running"]"#), String(row))
        XCTAssertTrue(row.contains(#""online":true"#), String(row))
        XCTAssertTrue(row.contains(#""slots":1"#), String(row))
    }
}
