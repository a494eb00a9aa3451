import AMQP
import BrokerTestSupport
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Logging
import Supervision
import XCTest

/// A worker test's world: its own topology names on the test broker, temp input/output
/// directories, the stand-in generator, workers on threads, and a client connection.
final class WorkerHarness {
    let root: URL
    let prefix: String
    var configuration: WorkerConfiguration
    private(set) var client: AMQPConnection
    private(set) var channel: AMQPChannel
    private var workers: [(Worker, DispatchSemaphore)] = []
    private var collected: [String: JobEvent] = [:]
    private var resultsConsumer: String?

    var inputs: URL { root.appendingPathComponent("inputs") }
    var outputs: URL { root.appendingPathComponent("outputs") }

    init(_ configure: (inout WorkerConfiguration) -> Void = { _ in }) throws {
        prefix = TestBroker.uniqueName("t")
        root = FileManager.default.temporaryDirectory.appendingPathComponent(prefix)
        for dir in ["inputs", "outputs", "ckpt"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        var c = WorkerConfiguration()
        c.amqp.url = TestBroker.url
        c.worker.name = "w1"
        c.worker.lockDir = root.appendingPathComponent("locks").path
        c.wan.python = "python3"
        c.wan.repo = TestBroker.repositoryRoot.appendingPathComponent("examples/standin").path
        c.wan.checkpoints = root.appendingPathComponent("ckpt").path
        c.inputs.roots = [root.appendingPathComponent("inputs").path]
        c.outputs.dir = root.appendingPathComponent("outputs").path
        c.supervisor.graceSeconds = 1
        // A dead worker's job is taken over after the lease: short, so tests that kill workers stay quick.
        c.jobs.leaseSeconds = 6
        let t = prefix
        c.topology.jobsExchange = "\(t).jobs"
        c.topology.jobsQueue = "\(t).jobs"
        c.topology.cancelExchange = "\(t).cancel"
        c.topology.cancelStream = "\(t).cancel.log"
        c.topology.eventsExchange = "\(t).events"
        c.topology.resultsQueue = "\(t).results"
        c.topology.deadExchange = "\(t).dead"
        c.topology.deadQueue = "\(t).dead"
        c.topology.unroutedExchange = "\(t).unrouted"
        c.topology.unroutedQueue = "\(t).unrouted"
        c.topology.ledgerStream = "\(t).ledger"
        configure(&c)
        configuration = c
        client = try AMQPConnection(url: c.amqp.url)
        channel = try client.openChannel()
        try channel.enableConfirms()
        try Topology.declare(on: channel, configuration: configuration)
    }

    /// A new client connection (the old one died with its broker).
    func reconnectClient() throws {
        client.close()
        client = try AMQPConnection(url: configuration.amqp.url)
        channel = try client.openChannel()
        try channel.enableConfirms()
        resultsConsumer = nil
    }

    /// Starts a worker on its own thread and waits until it consumes.
    @discardableResult
    func startWorker(
        name: String = "w1", webhooks: (any WebhookSink)? = nil, _ configure: (inout WorkerConfiguration) -> Void = { _ in }
    ) throws -> Worker {
        var c = configuration
        c.worker.name = name
        configure(&c)
        var logger = Logger(label: "worker-\(name)")
        logger.logLevel = .error
        let worker = Worker(configuration: c, logger: logger, webhooks: webhooks)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do { try worker.run() } catch { print("worker \(name) did not run: \(error)") }
            done.signal()
        }
        workers.append((worker, done))
        let deadline = Date().addingTimeInterval(20)
        while !worker.isConsuming {
            guard Date() < deadline else { throw TestSupportError("worker \(name) did not start consuming") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return worker
    }

    /// Stops a worker and waits for its thread to end.
    func stop(_ worker: Worker, mode: ShutdownMode = .requeue) {
        guard let index = workers.firstIndex(where: { $0.0 === worker }) else { return }
        worker.requestShutdown(mode)
        _ = workers[index].1.wait(timeout: .now() + 60)
        workers.remove(at: index)
    }

    func tearDown() {
        for (worker, _) in workers { worker.requestShutdown(.requeue) }
        for (_, done) in workers { _ = done.wait(timeout: .now() + 60) }
        workers.removeAll()
        let t = configuration.topology
        for queue in [t.jobsQueue, t.deadQueue, t.unroutedQueue, t.cancelStream, t.resultsQueue, t.ledgerStream] {
            _ = try? channel.deleteQueue(queue)
        }
        for exchange in [t.jobsExchange, t.cancelExchange, t.eventsExchange, t.deadExchange, t.unroutedExchange] {
            try? channel.deleteExchange(exchange)
        }
        try? FileManager.default.removeItem(at: root)
    }

    // MARK: - Client side

    static func jobBody(
        id: String, task: String = "t2v-A14B", prompt: String = "a red fox [[step_s=0.01]]",
        params: [String: JSONValue] = [:], timeout: Int? = nil
    ) -> [UInt8] {
        var p: [String: JSONValue] = ["prompt": .string(prompt), "size": "832*480", "sample_steps": 10]
        p.merge(params) { $1 }
        return try! ProtocolCoding.encode(JobMessage(id: id, task: task, params: p, timeoutSeconds: timeout, version: nil))
    }

    /// Publishes a job (confirmed) through the jobs exchange, or straight to the queue with `direct`.
    func submit(
        _ body: [UInt8], task: String = "t2v-A14B", messageID: String? = nil, replyTo: String? = nil,
        correlationID: String? = nil, direct: Bool = false
    ) throws {
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = messageID
        properties.timestamp = UInt64(Date().timeIntervalSince1970)  // as the CLI and the clients do: queue-wait metrics
        properties.replyTo = replyTo
        properties.correlationID = correlationID
        let exchange = direct ? "" : configuration.topology.jobsExchange
        let key = direct ? configuration.topology.jobsQueue : task
        XCTAssertEqual(try channel.publishConfirmed(exchange: exchange, routingKey: key, body: body, properties: properties), .ack)
    }

    func submit(id: String, prompt: String = "a red fox [[step_s=0.01]]", params: [String: JSONValue] = [:], timeout: Int? = nil) throws {
        try submit(Self.jobBody(id: id, prompt: prompt, params: params, timeout: timeout))
    }

    func cancel(_ id: String) throws {
        XCTAssertEqual(
            try channel.publishConfirmed(
                exchange: configuration.topology.cancelExchange, routingKey: "",
                body: try ProtocolCoding.encode(CancelMessage(id: id)), properties: .persistentJSON()), .ack)
    }

    /// Waits for the terminal result of `id` in the results queue.
    func result(_ id: String, timeout: TimeInterval = 30) throws -> JobEvent {
        if resultsConsumer == nil {
            resultsConsumer = try channel.consume(queue: configuration.topology.resultsQueue)
        }
        let deadline = Date().addingTimeInterval(timeout)
        while collected[id] == nil, Date() < deadline {
            if case .delivery(let d)? = try client.nextEvent(timeout: .milliseconds(200)), d.channel == channel.id {
                try channel.ack(d.deliveryTag)
                let event = try JobEvent.decode(d.body)
                XCTAssertNil(collected[event.id], "a second terminal result for \(event.id)")
                collected[event.id] = event
            }
        }
        guard let event = collected[id] else { throw TestSupportError("no result for \(id) within \(timeout) s") }
        return event
    }

    /// Messages now in a queue, read without consuming them for good (they are requeued by closing the channel).
    func peek(queue: String, expecting count: Int, timeout: TimeInterval = 10) throws -> [AMQPDelivery] {
        let connection = try AMQPConnection(url: configuration.amqp.url)
        let peekChannel = try connection.openChannel()
        try peekChannel.consume(queue: queue)
        var got: [AMQPDelivery] = []
        let deadline = Date().addingTimeInterval(timeout)
        while got.count < count, Date() < deadline {
            if let d = try connection.nextDelivery(timeout: .milliseconds(200)) { got.append(d) }
        }
        return got
    }

    /// Where the stand-in of `id` may have written `<id>.mp4<suffix>`: each attempt's run
    /// directory (`outputs/.runs/<id>.<attempt>/`, newest attempt first), then `outputs/`.
    func standinFiles(_ id: String, suffix: String) -> [URL] {
        let runs = outputs.appendingPathComponent(".runs")
        let attempts = ((try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? [])
            .filter { $0.hasPrefix("\(id).") }.compactMap { Int($0.dropFirst(id.count + 1)) }.sorted(by: >)
        let files =
            attempts.map { runs.appendingPathComponent("\(id).\($0)/\(id).mp4\(suffix)") } + [outputs.appendingPathComponent("\(id).mp4\(suffix)")]
        return files.filter { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// Forgets what the stand-in wrote about `id`'s runs so far (to see the next run start).
    func forgetStandinRecord(_ id: String) {
        for file in standinFiles(id, suffix: ".argv.json") { try? FileManager.default.removeItem(at: file) }
    }

    /// What the stand-in generator wrote about its own start, when it started.
    func standinRecord(_ id: String) -> (argv: [String], pid: Int32)? {
        guard let url = standinFiles(id, suffix: ".argv.json").first, let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let argv = object["argv"] as? [String], let pid = object["pid"] as? Int
        else { return nil }
        return (argv, Int32(pid))
    }

    /// Waits until the stand-in of `id` has started; returns its pid.
    func waitUntilRunning(_ id: String, timeout: TimeInterval = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let record = standinRecord(id) { return record.pid }
            Thread.sleep(forTimeInterval: 0.01)
        }
        throw TestSupportError("job \(id) did not start within \(timeout) s")
    }
}

/// Checks a message against one of docs/schemas/*.schema.json with Python's jsonschema.
func assertMatchesSchema(_ body: [UInt8], _ schema: String, file: StaticString = #filePath, line: UInt = #line) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("gw-msg-\(UUID()).json").path
    FileManager.default.createFile(atPath: path, contents: Data(body))
    defer { unlink(path) }
    let schemaPath = TestBroker.repositoryRoot.appendingPathComponent("docs/schemas/\(schema)").path
    let script = "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))"
    XCTAssertNoThrow(
        try TestBroker.run("/usr/bin/env", ["python3", "-c", script, path, schemaPath]),
        "\(String(decoding: body, as: UTF8.self)) does not match \(schema)", file: file, line: line)
}

/// Whether a process exists (and is not a zombie).
func processIsAlive(_ pid: Int32) -> Bool { ProcessTree.isAlive(pid) }

/// This test process's resident memory in bytes.
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    return (statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

extension WorkerHarness {
    /// The marker every generator of the worker `name` carries (see ProcessTree).
    func ownerMarker(_ name: String) -> String {
        var c = configuration
        c.worker.name = name
        return "GENWORKER_OWNER=\(c.ownerToken)"
    }

    /// Writes this harness's configuration as a YAML file for the `genworker` executable.
    /// `wanExtra`: more lines of the `wan:` section, indented by two spaces.
    func writeConfigFile(name: String, extra: String = "", wanExtra: String = "", outputsExtra: String = "") throws -> String {
        let c = configuration
        let t = c.topology
        let yaml = """
            amqp:
              \(c.amqp.urls.isEmpty ? "url: \(c.amqp.url)" : "urls: [\(c.amqp.urls.joined(separator: ", "))]")
              reconnect_max_s: 1
            worker:
              name: \(name)
              slots: \(c.worker.slots)
              lock_dir: \(c.worker.lockDir)
              quarantine_after: \(c.worker.quarantineAfter)
              probe_every_s: \(c.worker.probeEverySeconds)
              probe_command: [\(c.worker.probeCommand.map { "'\($0)'" }.joined(separator: ", "))]
              gpus: [\(c.worker.gpus.map { "'\($0)'" }.joined(separator: ", "))]
            topology:
              jobs_exchange: \(t.jobsExchange)
              jobs_queue: \(t.jobsQueue)
              cancel_exchange: \(t.cancelExchange)
              cancel_stream: \(t.cancelStream)
              events_exchange: \(t.eventsExchange)
              results_queue: \(t.resultsQueue)
              dead_exchange: \(t.deadExchange)
              dead_queue: \(t.deadQueue)
              unrouted_exchange: \(t.unroutedExchange)
              unrouted_queue: \(t.unroutedQueue)
              ledger_stream: \(t.ledgerStream)
              ledger_retention_h: \(t.ledgerRetentionHours)
              delivery_limit: \(t.deliveryLimit)
            jobs:
              lease_s: \(c.jobs.leaseSeconds)
              machine_fault_retries: \(c.jobs.machineFaultRetries)
            wan:
              python: python3
              repo: \(c.wan.repo)
              checkpoints: \(c.wan.checkpoints)
            \(wanExtra)
            inputs:
              roots: [\(c.inputs.roots.joined(separator: ", "))]
            outputs:
              dir: \(c.outputs.dir)
            \(outputsExtra)
            supervisor:
              grace_s: 1
            metrics:
              address: 127.0.0.1
              port: 0
            \(extra)
            """
        let path = root.appendingPathComponent("\(name).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `genworker run` as a process of its own; returns its pid once it consumes.
    /// `environment`: added to this process's; `ownProcessGroup`: the worker leads a process
    /// group of its own, so a test can stop the whole group (`kill -STOP -PGID`) as Ctrl-Z does.
    func spawnWorkerProcess(
        name: String, extraArguments: [String] = [], extraConfig: String = "", wanExtra: String = "", outputsExtra: String = "",
        environment: [String: String] = [:], ownProcessGroup: Bool = false, waitUntilConsuming: Bool = true
    ) throws -> pid_t {
        let config = try writeConfigFile(name: name, extra: extraConfig, wanExtra: wanExtra, outputsExtra: outputsExtra)
        let executable = TestBroker.genworkerExecutable
        let log = root.appendingPathComponent("\(name).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable, "run", "--config", config] + extraArguments).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + env).forEach { free($0) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        }
        var pid: pid_t = 0
        guard posix_spawn(&pid, executable, &actions, &attributes, argv, env) == 0 else { throw TestSupportError("cannot start \(executable)") }
        if !waitUntilConsuming { return pid }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: log, encoding: .utf8), text.contains("consuming \(configuration.topology.jobsQueue)") {
                return pid
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(pid, SIGKILL)
        _ = waitForExit(pid, timeout: 5)
        throw TestSupportError("genworker \(name) did not start consuming; log: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// The metrics port a spawned worker logged.
    func metricsPort(of name: String, address: String = "127.0.0.1") -> Int? {
        let deadline = Date().addingTimeInterval(5)
        repeat {
            let text = (try? String(contentsOfFile: root.appendingPathComponent("\(name).log").path, encoding: .utf8)) ?? ""
            if let range = text.range(of: "metrics and health on \(address):") { return Int(text[range.upperBound...].prefix { $0.isNumber }) }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return nil
    }

    /// GETs a path of a spawned worker's HTTP endpoint: (status, body).
    func http(_ port: Int, _ path: String) -> (Int, String) {
        guard let out = try? TestBroker.run("/usr/bin/curl", ["-s", "-m", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]) else {
            return (0, "")
        }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// Waits for a child process to exit; returns its wait status.
    func waitForExit(_ pid: pid_t, timeout: TimeInterval = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while Date() < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return status }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }

    /// Waits until no process carries `marker`; returns how long that took, or nil.
    func waitUntilGone(_ marker: String, timeout: TimeInterval = 5) -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if ProcessTree.processes(withEnvironment: marker).isEmpty { return Date().timeIntervalSince(start) }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return nil
    }

    /// The environment the stand-in of `id` was started with.
    func standinEnvironment(_ id: String) -> [String: String]? {
        guard let url = standinFiles(id, suffix: ".argv.json").first, let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["env"] as? [String: String]
    }
}
