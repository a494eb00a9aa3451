import AMQP
import Foundation
import Logging
import Yams

/// Everything a worker is configured with: one YAML file (default `config/genworker.yaml`)
/// plus environment overrides for secrets. Every key has a default (docs in README's
/// configuration reference); an unknown key or a bad value stops the worker at start
/// with a message naming the key.
public struct WorkerConfiguration: Sendable {
    public struct AMQPSection: Sendable {
        /// `amqp.url` (env `GENWORKER_AMQP_URL`). Default `amqp://guest:guest@127.0.0.1:5672/`.
        public var url = "amqp://guest:guest@127.0.0.1:5672/"
        /// `amqp.reconnect_max_s`: longest wait between reconnect attempts. Default 30 s.
        public var reconnectMax: Duration = .seconds(30)
        /// `amqp.confirm_timeout_s`: how long a result publish may wait for the broker's confirm. Default 30 s.
        public var confirmTimeout: Duration = .seconds(30)
    }

    public struct WorkerSection: Sendable {
        /// `worker.name`: shown in results and logs. Default: the host name.
        public var name = ProcessInfo.processInfo.hostName
        /// `worker.tasks`: the tasks this worker serves. Default all five.
        public var tasks: [WanTask] = WanTask.allCases
        /// `worker.slots`: jobs at once (GPU slots). Default 1.
        public var slots = 1
        /// `worker.declare_topology`: declare exchanges and queues at start. Default true.
        public var declareTopology = true
    }

    public struct TopologySection: Sendable {
        public var jobsExchange = "genworker.jobs"
        public var jobsQueue = "genworker.jobs"
        public var cancelExchange = "genworker.cancel"
        /// A stream bound to the cancel fanout: workers replay it at start, so a cancel sent while no worker ran still counts.
        public var cancelStream = "genworker.cancel.log"
        public var eventsExchange = "genworker.events"
        public var resultsQueue = "genworker.results"
        public var deadExchange = "genworker.dead"
        public var deadQueue = "genworker.dead"
        /// Jobs for a task no queue serves land here (alternate exchange of the jobs exchange).
        public var unroutedExchange = "genworker.unrouted"
        public var unroutedQueue = "genworker.unrouted"
        /// `topology.delivery_limit`: redeliveries before a job is dead-lettered (quorum queue). Default 3.
        public var deliveryLimit = 3
        /// `topology.results_ttl_h`: how long results wait in `genworker.results`. Default 168 h.
        public var resultsTTLHours = 168
        /// `topology.cancel_retention_h`: how long a cancel of a queued job is honoured. Default 24 h.
        public var cancelRetentionHours = 24
    }

    public struct WanSection: Sendable {
        /// `wan.python`: the interpreter. Default `python3`.
        public var python = "python3"
        /// `wan.repo`: the Wan2.2 checkout holding generate.py. Default `/opt/Wan2.2`.
        public var repo = "/opt/Wan2.2"
        /// `wan.checkpoints`: the directory holding `Wan2.2-T2V-A14B/` and the others. Default `/models`.
        public var checkpoints = "/models"
        /// `wan.gpus_per_job`: > 1 runs `torchrun --nproc_per_node N ... --dit_fsdp --t5_fsdp --ulysses_size N`. Default 1.
        public var gpusPerJob = 1
        /// `wan.torchrun`: the torchrun program. Default `torchrun`.
        public var torchrun = "torchrun"
    }

    public struct JobsSection: Sendable {
        /// `jobs.max_body_bytes`: larger job messages are refused. Default 1 MiB.
        public var maxBodyBytes = 1 << 20
        /// `jobs.default_timeout_s`: when a job names none. Default 3600.
        public var defaultTimeoutSeconds = 3600
        /// `jobs.max_timeout_s`: the most a job may ask for. Default 21600 (keep below the broker's consumer_timeout).
        public var maxTimeoutSeconds = 21600
    }

    public var amqp = AMQPSection()
    public var worker = WorkerSection()
    public var topology = TopologySection()
    public var wan = WanSection()
    /// `inputs.roots`: job input paths must resolve (symlinks followed) under one of these. Default none: no inputs accepted.
    public var inputRoots: [String] = []
    /// `outputs.dir`: videos are written here as `<job id>.mp4`. Default `/var/lib/genworker/outputs`.
    public var outputsDirectory = "/var/lib/genworker/outputs"
    public var supervisor = SupervisorOptions()
    public struct MetricsSection: Sendable {
        /// `metrics.enabled`: serve /metrics, /healthz, /readyz. Default true.
        public var enabled = true
        /// `metrics.address`: IPv4 address to listen on. Default 0.0.0.0 (probes come from outside).
        public var address = "0.0.0.0"
        /// `metrics.port`. Default 9464.
        public var port = 9464
    }

    public var metrics = MetricsSection()
    /// `cancel.authorize`: honour a cancel only from the job's submitter or an admin, by AMQP `user_id`. Default false.
    public var cancelAuthorize = false
    /// `cancel.admins`: broker users who may cancel any job. Default none.
    public var cancelAdmins: [String] = []
    /// `log.format`: `text` or `json` (JSON lines). Default text.
    public var logFormat = "text"
    /// `log.level`: trace … critical. Default info.
    public var logLevel = "info"
    /// `shutdown.mode`: on SIGTERM/SIGINT, `drain` (finish running jobs) or `requeue` (stop them, give them back). Default drain.
    public var shutdownMode: ShutdownMode = .drain
    /// `shutdown.drain_timeout_s`: a drain longer than this requeues what still runs. Default 1800 s.
    public var drainTimeout: Duration = .seconds(1800)
    /// `progress.interval_ms`: at most one `progress` event per job per interval. Default 1000 ms.
    public var progressInterval: Duration = .seconds(1)
    public var jobs = JobsSection()
    /// `env.pass`: variables the generator inherits from the worker besides PATH, HOME, LANG and the CUDA ones. Default none.
    public var passEnvironment: [String] = []
    /// `env.set`: variables set for the generator. Default none.
    public var setEnvironment: [String: String] = [:]

    public init() {}

    /// Marks this worker's generators (`GENWORKER_OWNER`): the worker's name and its queue.
    /// The watchdog kills them when the worker dies; a restarted worker kills what is left.
    public var ownerToken: String {
        String("\(worker.name)@\(topology.jobsQueue)".map { $0.isLetter || $0.isNumber || "-_.@".contains($0) ? $0 : "_" })
    }

    /// Reads a YAML file, then the environment (`GENWORKER_AMQP_URL`, `GENWORKER_WORKER_NAME`).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> WorkerConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError("cannot read the config file \(path)")
        }
        var configuration = try parse(yaml: text)
        if let url = environment["GENWORKER_AMQP_URL"], !url.isEmpty { configuration.amqp.url = url }
        if let name = environment["GENWORKER_WORKER_NAME"], !name.isEmpty { configuration.worker.name = name }
        try configuration.validate()
        return configuration
    }

    /// Parses YAML text (no environment overrides).
    public static func parse(yaml: String) throws -> WorkerConfiguration {
        let loaded: Any?
        do { loaded = try Yams.load(yaml: yaml) } catch { throw ConfigurationError("the config is not valid YAML: \(error)") }
        var c = WorkerConfiguration()
        guard let loaded else { return c }
        let root = try ConfigNode(value: loaded, path: "")
        try root.section("amqp") { n in
            try n.string("url") { c.amqp.url = $0 }
            try n.duration("reconnect_max_s") { c.amqp.reconnectMax = $0 }
            try n.duration("confirm_timeout_s") { c.amqp.confirmTimeout = $0 }
        }
        try root.section("worker") { n in
            try n.string("name") { c.worker.name = $0 }
            try n.int("slots", 1...64) { c.worker.slots = $0 }
            try n.bool("declare_topology") { c.worker.declareTopology = $0 }
            try n.strings("tasks") { names in
                c.worker.tasks = try names.map { name in
                    guard let task = WanTask(rawValue: name) else {
                        throw ConfigurationError("worker.tasks: unknown task '\(name)' (known: \(WanTask.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    return task
                }
            }
        }
        try root.section("topology") { n in
            try n.string("jobs_exchange") { c.topology.jobsExchange = $0 }
            try n.string("jobs_queue") { c.topology.jobsQueue = $0 }
            try n.string("cancel_exchange") { c.topology.cancelExchange = $0 }
            try n.string("cancel_stream") { c.topology.cancelStream = $0 }
            try n.string("events_exchange") { c.topology.eventsExchange = $0 }
            try n.string("results_queue") { c.topology.resultsQueue = $0 }
            try n.string("dead_exchange") { c.topology.deadExchange = $0 }
            try n.string("dead_queue") { c.topology.deadQueue = $0 }
            try n.string("unrouted_exchange") { c.topology.unroutedExchange = $0 }
            try n.string("unrouted_queue") { c.topology.unroutedQueue = $0 }
            try n.int("delivery_limit", 1...1000) { c.topology.deliveryLimit = $0 }
            try n.int("results_ttl_h", 1...87600) { c.topology.resultsTTLHours = $0 }
            try n.int("cancel_retention_h", 1...8760) { c.topology.cancelRetentionHours = $0 }
        }
        try root.section("wan") { n in
            try n.string("python") { c.wan.python = $0 }
            try n.string("repo") { c.wan.repo = $0 }
            try n.string("checkpoints") { c.wan.checkpoints = $0 }
            try n.int("gpus_per_job", 1...64) { c.wan.gpusPerJob = $0 }
            try n.string("torchrun") { c.wan.torchrun = $0 }
        }
        try root.section("inputs") { n in try n.strings("roots") { c.inputRoots = $0 } }
        try root.section("outputs") { n in try n.string("dir") { c.outputsDirectory = $0 } }
        try root.section("supervisor") { n in
            try n.duration("grace_s") { c.supervisor.grace = $0 }
            try n.int("poll_ms", 1...60000) { c.supervisor.pollInterval = .milliseconds($0) }
            try n.int("log_tail_lines", 0...10000) { c.supervisor.logTailLines = $0 }
            try n.string("watchdog") { c.supervisor.watchdogPath = $0 }
        }
        try root.section("shutdown") { n in
            try n.string("mode") { value in
                guard let mode = ShutdownMode(rawValue: value) else { throw ConfigurationError("shutdown.mode must be drain or requeue, not '\(value)'") }
                c.shutdownMode = mode
            }
            try n.duration("drain_timeout_s") { c.drainTimeout = $0 }
        }
        try root.section("cancel") { n in
            try n.bool("authorize") { c.cancelAuthorize = $0 }
            try n.strings("admins") { c.cancelAdmins = $0 }
        }
        try root.section("metrics") { n in
            try n.bool("enabled") { c.metrics.enabled = $0 }
            try n.string("address") { c.metrics.address = $0 }
            try n.int("port", 0...65535) { c.metrics.port = $0 }
        }
        try root.section("log") { n in
            try n.string("format") { value in
                guard ["text", "json"].contains(value) else { throw ConfigurationError("log.format must be text or json, not '\(value)'") }
                c.logFormat = value
            }
            try n.string("level") { value in
                guard Logger.Level(rawValue: value) != nil else { throw ConfigurationError("log.level must be one of trace, debug, info, notice, warning, error, critical") }
                c.logLevel = value
            }
        }
        try root.section("progress") { n in try n.int("interval_ms", 0...3_600_000) { c.progressInterval = .milliseconds($0) } }
        try root.section("jobs") { n in
            try n.int("max_body_bytes", 256...(256 << 20)) { c.jobs.maxBodyBytes = $0 }
            try n.int("default_timeout_s", 1...(30 * 86400)) { c.jobs.defaultTimeoutSeconds = $0 }
            try n.int("max_timeout_s", 1...(30 * 86400)) { c.jobs.maxTimeoutSeconds = $0 }
        }
        try root.section("env") { n in
            try n.strings("pass") { c.passEnvironment = $0 }
            try n.stringMap("set") { c.setEnvironment = $0 }
        }
        try root.finish()
        return c
    }

    /// Cross-key checks.
    public func validate() throws {
        do { _ = try AMQPConfiguration(url: amqp.url) } catch {
            throw ConfigurationError("amqp.url: \(error.message)")
        }
        guard jobs.defaultTimeoutSeconds <= jobs.maxTimeoutSeconds else {
            throw ConfigurationError("jobs.default_timeout_s (\(jobs.defaultTimeoutSeconds)) exceeds jobs.max_timeout_s (\(jobs.maxTimeoutSeconds))")
        }
        guard !worker.tasks.isEmpty else { throw ConfigurationError("worker.tasks: serve at least one task") }
        for root in inputRoots where !root.hasPrefix("/") { throw ConfigurationError("inputs.roots: '\(root)' must be an absolute path") }
        guard outputsDirectory.hasPrefix("/") else { throw ConfigurationError("outputs.dir: '\(outputsDirectory)' must be an absolute path") }
    }
}

/// A configuration mistake, naming the key.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One mapping of the YAML, read key by key; keys nobody read are reported as unknown.
final class ConfigNode {
    let path: String
    let map: [String: Any]
    var used: Set<String> = []
    var children: [ConfigNode] = []

    init(value: Any, path: String) throws {
        guard let map = value as? [String: Any] else {
            throw ConfigurationError("\(path.isEmpty ? "the config" : path) must be a mapping of keys to values")
        }
        self.path = path
        self.map = map
    }

    func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    private func value(_ name: String) -> Any? {
        used.insert(name)
        guard let v = map[name], !(v is NSNull) else { return nil }
        return v
    }

    func section(_ name: String, _ read: (ConfigNode) throws -> Void) throws {
        guard let v = value(name) else { return }
        let child = try ConfigNode(value: v, path: key(name))
        try read(child)
        children.append(child)
    }

    func string(_ name: String, _ set: (String) throws -> Void) throws {
        guard let v = value(name) else { return }
        guard let s = v as? String, !s.isEmpty else { throw ConfigurationError("\(key(name)) must be a non-empty string") }
        try set(s)
    }

    func int(_ name: String, _ range: ClosedRange<Int>, _ set: (Int) -> Void) throws {
        guard let v = value(name) else { return }
        guard let i = v as? Int, range.contains(i) else {
            throw ConfigurationError("\(key(name)) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(v)'")
        }
        set(i)
    }

    func duration(_ name: String, _ set: (Duration) -> Void) throws {
        guard let v = value(name) else { return }
        let seconds: Double? = (v as? Int).map(Double.init) ?? (v as? Double)
        guard let seconds, seconds >= 0, seconds <= 86400 * 30 else {
            throw ConfigurationError("\(key(name)) must be a number of seconds ≥ 0, not '\(v)'")
        }
        set(.milliseconds(Int64(seconds * 1000)))
    }

    func bool(_ name: String, _ set: (Bool) -> Void) throws {
        guard let v = value(name) else { return }
        guard let b = v as? Bool else { throw ConfigurationError("\(key(name)) must be true or false, not '\(v)'") }
        set(b)
    }

    func strings(_ name: String, _ set: ([String]) throws -> Void) throws {
        guard let v = value(name) else { return }
        guard let list = v as? [Any], let strings = list as? [String] else {
            throw ConfigurationError("\(key(name)) must be a list of strings")
        }
        try set(strings)
    }

    func stringMap(_ name: String, _ set: ([String: String]) -> Void) throws {
        guard let v = value(name) else { return }
        guard let map = v as? [String: Any] else { throw ConfigurationError("\(key(name)) must be a mapping") }
        var result: [String: String] = [:]
        for (k, value) in map {
            guard let s = value as? String ?? (value as? Int).map(String.init) else {
                throw ConfigurationError("\(key(name)).\(k) must be a string")
            }
            result[k] = s
        }
        set(result)
    }

    /// Throws for the first key no reader asked for, here or in a section.
    func finish() throws {
        if let unknown = map.keys.sorted().first(where: { !used.contains($0) }) {
            throw ConfigurationError("unknown config key '\(key(unknown))'")
        }
        for child in children { try child.finish() }
    }
}
