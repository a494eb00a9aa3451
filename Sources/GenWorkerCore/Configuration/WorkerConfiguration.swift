import AMQPTypes
import Foundation
import Logging
import Yams

/// Everything a worker is configured with: one YAML file (default `config/genworker.yaml`),
/// then the environment. Each section below mirrors a section of the YAML, key for key
/// (snake_case there, camelCase here); each property's initial value is its one default,
/// which config/genworker.yaml and the README's reference repeat (tests hold them equal).
/// An unknown key or a bad value stops the worker at start with a message naming the key.
public struct WorkerConfiguration: Sendable, Equatable, Decodable {
    public struct AMQPSection: Sendable, Equatable, Decodable {
        /// `amqp.url` (env `GENWORKER_AMQP_URL`): `amqp[s]://user:password@host:port/vhost?heartbeat=30`.
        /// The one-node shorthand of `amqp.urls`.
        public var url = "amqp://guest:guest@127.0.0.1:5672/"
        /// `amqp.urls`: the nodes of a cluster. The worker connects to the first that answers
        /// and, when the connection is lost, tries the next ones in turn. Default none: `amqp.url`.
        public var urls: [String] = []
        /// `amqp.reconnect_max_s`: longest wait between reconnect attempts (backoff doubles from 0.25 s).
        public var reconnectMaxSeconds: Double = 30
        /// `amqp.confirm_timeout_s`: how long a result publish waits for the broker's confirm.
        public var confirmTimeoutSeconds: Double = 30

        public var reconnectMax: Duration { .seconds(reconnectMaxSeconds) }
        public var confirmTimeout: Duration { .seconds(confirmTimeoutSeconds) }

        /// The nodes to try, in order: `amqp.urls`, else `amqp.url`.
        public var endpoints: [String] { urls.isEmpty ? [url] : urls }

        /// Sets the nodes from one string, as the environment and `--url` give them: one URL,
        /// or several separated by commas.
        public mutating func setEndpoints(_ text: String) {
            let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard let first = parts.first else { return }
            url = first
            urls = parts.count > 1 ? parts : []
        }

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case url, urls
            case reconnectMaxSeconds = "reconnect_max_s"
            case confirmTimeoutSeconds = "confirm_timeout_s"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&url, .url)
            try c.read(&urls, .urls)
            if try c.has(.url), try c.has(.urls) {
                throw GenWorkerError(.configuration, "amqp: set amqp.url (one node) or amqp.urls (a cluster), not both")
            }
            try c.read(&reconnectMaxSeconds, .reconnectMaxSeconds, seconds: true)
            try c.read(&confirmTimeoutSeconds, .confirmTimeoutSeconds, seconds: true)
        }
    }

    public struct WorkerSection: Sendable, Equatable, Decodable {
        /// `worker.name` (env `GENWORKER_WORKER_NAME`): in results and logs; unique per queue. Default: the host name.
        public var name = ProcessInfo.processInfo.hostName
        /// `worker.slots`: jobs at once (= prefetch); slot N gets `CUDA_VISIBLE_DEVICES=N` when > 1.
        public var slots = 1
        /// `worker.tasks`: the tasks this worker serves (queue bindings). Default all five.
        public var tasks: [WanTask] = WanTask.allCases
        /// `worker.declare_topology`: declare exchanges and queues at start.
        public var declareTopology = true
        /// `worker.lock_dir`: where a live worker holds the lock on its identity (one worker per
        /// name and queue on a machine).
        public var lockDir = "/run/lock"

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case name, slots, tasks
            case declareTopology = "declare_topology"
            case lockDir = "lock_dir"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&name, .name)
            try c.read(&slots, .slots, 1...64)
            var names = tasks.map(\.rawValue)
            try c.read(&names, .tasks)
            tasks = try names.map { name in
                guard let task = WanTask(rawValue: name) else {
                    throw GenWorkerError(
                        .configuration, "worker.tasks: unknown task '\(name)' (known: \(WanTask.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return task
            }
            try c.read(&declareTopology, .declareTopology)
            try c.read(&lockDir, .lockDir)
        }
    }

    public struct TopologySection: Sendable, Equatable, Decodable {
        /// `topology.jobs_exchange`: direct; routing key = task.
        public var jobsExchange = "genworker.jobs"
        /// `topology.jobs_queue`: the quorum queue every worker of the fleet consumes.
        public var jobsQueue = "genworker.jobs"
        /// `topology.cancel_exchange`: fanout every worker hears.
        public var cancelExchange = "genworker.cancel"
        /// `topology.cancel_stream`: a stream bound to the cancel fanout, replayed at start.
        public var cancelStream = "genworker.cancel.log"
        /// `topology.events_exchange`: topic; routing key `<id>.<event>`.
        public var eventsExchange = "genworker.events"
        /// `topology.results_queue`: every terminal event, kept `results_ttl_h`.
        public var resultsQueue = "genworker.results"
        public var deadExchange = "genworker.dead"
        public var deadQueue = "genworker.dead"
        /// `topology.unrouted_exchange`: the jobs exchange's alternate exchange (tasks no queue serves).
        public var unroutedExchange = "genworker.unrouted"
        public var unroutedQueue = "genworker.unrouted"
        /// `topology.delivery_limit`: deliveries before a job fails with `delivery_limit` and is dead-lettered.
        public var deliveryLimit = 3
        /// `topology.results_ttl_h`: how long results wait in the results queue.
        public var resultsTTLHours = 168
        /// `topology.cancel_retention_h`: how long a cancel of a queued job is honoured.
        public var cancelRetentionHours = 24
        /// `topology.ledger_stream`: the fleet's record (a stream): submissions, cancels, claims,
        /// heartbeats, expiries and results, in one replicated order.
        public var ledgerStream = "genworker.ledger"
        /// `topology.ledger_retention_h`: how far back workers and `genworker status` read the
        /// ledger: the window in which an id runs once and its result is remembered. Fractions
        /// are allowed (0.005 = 18 s: the tests of jobs longer than the window); a run longer
        /// than the window is carried forward in it (`carry` records, docs/protocol.md).
        public var ledgerRetentionHours: Double = 24
        /// The window in seconds.
        public var ledgerRetention: TimeInterval { ledgerRetentionHours * 3600 }
        /// `topology.ledger_writers`: the AMQP users whose ledger records count. The broker
        /// vouches for a message's `user_id` (it refuses one that is not the connection's user),
        /// so a record from any other account is ignored and counted. Empty (the default): the
        /// user of `amqp.url` (the first of `amqp.urls`). `["*"]`: any account (a fleet with
        /// workers older than this check, which write no `user_id`). Give workers an account
        /// of their own: a client with the workers' account can write what a worker can.
        public var ledgerWriters: [String] = []

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case jobsExchange = "jobs_exchange"
            case jobsQueue = "jobs_queue"
            case cancelExchange = "cancel_exchange"
            case cancelStream = "cancel_stream"
            case eventsExchange = "events_exchange"
            case resultsQueue = "results_queue"
            case deadExchange = "dead_exchange"
            case deadQueue = "dead_queue"
            case unroutedExchange = "unrouted_exchange"
            case unroutedQueue = "unrouted_queue"
            case deliveryLimit = "delivery_limit"
            case resultsTTLHours = "results_ttl_h"
            case cancelRetentionHours = "cancel_retention_h"
            case ledgerStream = "ledger_stream"
            case ledgerRetentionHours = "ledger_retention_h"
            case ledgerWriters = "ledger_writers"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&jobsExchange, .jobsExchange)
            try c.read(&jobsQueue, .jobsQueue)
            try c.read(&cancelExchange, .cancelExchange)
            try c.read(&cancelStream, .cancelStream)
            try c.read(&eventsExchange, .eventsExchange)
            try c.read(&resultsQueue, .resultsQueue)
            try c.read(&deadExchange, .deadExchange)
            try c.read(&deadQueue, .deadQueue)
            try c.read(&unroutedExchange, .unroutedExchange)
            try c.read(&unroutedQueue, .unroutedQueue)
            try c.read(&deliveryLimit, .deliveryLimit, 1...1000)
            try c.read(&resultsTTLHours, .resultsTTLHours, 1...87600)
            try c.read(&cancelRetentionHours, .cancelRetentionHours, 1...8760)
            try c.read(&ledgerStream, .ledgerStream)
            try c.read(&ledgerRetentionHours, .ledgerRetentionHours, 0.005...8760, unit: "hours")
            try c.read(&ledgerWriters, .ledgerWriters)
        }
    }

    public struct WanSection: Sendable, Equatable, Decodable {
        /// `wan.python`: the interpreter of the Wan2.2 environment.
        public var python = "python3"
        /// `wan.repo`: the Wan2.2 checkout holding generate.py (the generator's working directory).
        public var repo = "/opt/Wan2.2"
        /// `wan.checkpoints`: holds `Wan2.2-T2V-A14B/` and the others.
        public var checkpoints = "/models"
        /// `wan.gpus_per_job`: > 1 runs `torchrun --nproc_per_node N ... --dit_fsdp --t5_fsdp --ulysses_size N`.
        public var gpusPerJob = 1
        /// `wan.torchrun`: the torchrun program.
        public var torchrun = "torchrun"
        /// `wan.warm`: keep each slot's pipelines loaded between jobs in a long-lived runner
        /// (single-GPU jobs only). Off until GPU figures exist.
        public var warm = false
        /// `wan.warm_runner`: the runner program. Default: `warm_runner.py` next to the executable.
        public var warmRunner: String?
        /// `wan.warm_max_jobs`: a runner is replaced after this many jobs.
        public var warmMaxJobs = 100
        /// `wan.warm_max_rss_mb`: a runner (with its children) resident above this is replaced after its job; 0: no bound.
        public var warmMaxRSSMB = 0
        /// `wan.warm_idle_s`: an idle runner exits after this long (frees the GPU); 0: never.
        public var warmIdleSeconds: Double = 600

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case python, repo, checkpoints, torchrun, warm
            case gpusPerJob = "gpus_per_job"
            case warmRunner = "warm_runner"
            case warmMaxJobs = "warm_max_jobs"
            case warmMaxRSSMB = "warm_max_rss_mb"
            case warmIdleSeconds = "warm_idle_s"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&python, .python)
            try c.read(&repo, .repo)
            try c.read(&checkpoints, .checkpoints)
            try c.read(&gpusPerJob, .gpusPerJob, 1...64)
            try c.read(&torchrun, .torchrun)
            try c.read(&warm, .warm)
            try c.read(&warmRunner, .warmRunner)
            try c.read(&warmMaxJobs, .warmMaxJobs, 1...1_000_000)
            try c.read(&warmMaxRSSMB, .warmMaxRSSMB, 0...10_000_000)
            try c.read(&warmIdleSeconds, .warmIdleSeconds, seconds: true)
        }
    }

    public struct InputsSection: Sendable, Equatable, Decodable {
        /// `inputs.roots`: job input paths must resolve (symlinks followed) under one of these. Default none.
        public var roots: [String] = []

        package enum CodingKeys: String, CodingKey, CaseIterable { case roots }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            try ConfigReader(decoder, CodingKeys.self).read(&roots, .roots)
        }
    }

    public struct OutputsSection: Sendable, Equatable, Decodable {
        /// `outputs.dir`: videos land here as `<job id>.mp4`.
        public var dir = "/var/lib/genworker/outputs"

        package enum CodingKeys: String, CodingKey, CaseIterable { case dir }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            try ConfigReader(decoder, CodingKeys.self).read(&dir, .dir)
        }
    }

    public struct SupervisorSection: Sendable, Equatable, Decodable {
        /// `supervisor.grace_s`: SIGTERM → SIGKILL; torchrun needs about 30 s to stop its workers.
        public var graceSeconds: Double = 30
        /// `supervisor.poll_ms`: deadline checks; a cancel wakes the supervisor at once regardless.
        public var pollMilliseconds = 100
        /// `supervisor.log_tail_lines`: lines of generator output in each result.
        public var logTailLines = 50
        /// `supervisor.watchdog`: the `genworker-watchdog` program. Default: next to the executable.
        public var watchdog: String?

        public var grace: Duration { .seconds(graceSeconds) }
        public var pollInterval: Duration { .milliseconds(pollMilliseconds) }

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case watchdog
            case graceSeconds = "grace_s"
            case pollMilliseconds = "poll_ms"
            case logTailLines = "log_tail_lines"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&graceSeconds, .graceSeconds, seconds: true)
            try c.read(&pollMilliseconds, .pollMilliseconds, 1...60000)
            try c.read(&logTailLines, .logTailLines, 0...10000)
            try c.read(&watchdog, .watchdog)
        }
    }

    public struct JobsSection: Sendable, Equatable, Decodable {
        /// `jobs.max_body_bytes`: larger job messages are refused.
        public var maxBodyBytes = 1 << 20
        /// `jobs.default_timeout_s`: when a job names none.
        public var defaultTimeoutSeconds = 3600
        /// `jobs.max_timeout_s`: the most a job may ask for; keep below the broker's consumer_timeout.
        public var maxTimeoutSeconds = 21600
        /// `jobs.lease_s`: how long a job stays its worker's without a renewal in the ledger.
        /// Heartbeats renew every `lease_s / 4`; an owner that cannot renew stops its run at
        /// `lease_s − supervisor.grace_s − lease_s/10`; other workers requeue it after `lease_s`.
        /// A broker outage shorter than the fence costs no run.
        public var leaseSeconds: Double = 120

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case leaseSeconds = "lease_s"
            case maxBodyBytes = "max_body_bytes"
            case defaultTimeoutSeconds = "default_timeout_s"
            case maxTimeoutSeconds = "max_timeout_s"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&maxBodyBytes, .maxBodyBytes, 256...(256 << 20))
            try c.read(&defaultTimeoutSeconds, .defaultTimeoutSeconds, 1...(30 * 86400))
            try c.read(&maxTimeoutSeconds, .maxTimeoutSeconds, 1...(30 * 86400))
            try c.read(&leaseSeconds, .leaseSeconds, seconds: true)
        }
    }

    public struct EnvSection: Sendable, Equatable, Decodable {
        /// `env.pass`: variables the generator inherits besides PATH, HOME, LANG, TMPDIR, `CUDA_*`, `NVIDIA_*`.
        public var pass: [String] = []
        /// `env.set`: variables set for the generator.
        public var set: [String: String] = [:]

        package enum CodingKeys: String, CodingKey, CaseIterable { case pass, set }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&pass, .pass)
            try c.read(&set, .set)
        }
    }

    public struct ProgressSection: Sendable, Equatable, Decodable {
        /// `progress.interval_ms`: at most one progress event per job per interval (a new phase goes out at once).
        public var intervalMilliseconds = 1000

        public var interval: Duration { .milliseconds(intervalMilliseconds) }

        package enum CodingKeys: String, CodingKey, CaseIterable { case intervalMilliseconds = "interval_ms" }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            try ConfigReader(decoder, CodingKeys.self).read(&intervalMilliseconds, .intervalMilliseconds, 0...3_600_000)
        }
    }

    public struct ShutdownSection: Sendable, Equatable, Decodable {
        /// `shutdown.mode`: on SIGTERM/SIGINT, `drain` (finish running jobs) or `requeue` (stop them, give them back).
        public var mode: ShutdownMode = .drain
        /// `shutdown.drain_timeout_s`: a drain longer than this requeues what still runs.
        public var drainTimeoutSeconds: Double = 1800

        public var drainTimeout: Duration { .seconds(drainTimeoutSeconds) }

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case mode
            case drainTimeoutSeconds = "drain_timeout_s"
        }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            var name = mode.rawValue
            try c.read(&name, .mode)
            guard let mode = ShutdownMode(rawValue: name) else {
                throw GenWorkerError(.configuration, "shutdown.mode must be drain or requeue, not '\(name)'")
            }
            self.mode = mode
            try c.read(&drainTimeoutSeconds, .drainTimeoutSeconds, seconds: true)
        }
    }

    public struct MetricsSection: Sendable, Equatable, Decodable {
        /// `metrics.enabled`: serve /metrics, /healthz, /readyz.
        public var enabled = true
        /// `metrics.address`: `::` listens on every IPv6 and IPv4 address; `0.0.0.0` on IPv4 only.
        public var address = "::"
        /// `metrics.port`: 0 picks a free port.
        public var port = 9464

        package enum CodingKeys: String, CodingKey, CaseIterable { case enabled, address, port }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&enabled, .enabled)
            try c.read(&address, .address)
            try c.read(&port, .port, 0...65535)
        }
    }

    public struct LogSection: Sendable, Equatable, Decodable {
        /// `log.format`: `text`, or `json` (one JSON object per line, for log shippers).
        public var format = "text"
        /// `log.level`: trace, debug, info, notice, warning, error, critical.
        public var level = "info"

        package enum CodingKeys: String, CodingKey, CaseIterable { case format, level }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&format, .format)
            guard ["text", "json"].contains(format) else {
                throw GenWorkerError(.configuration, "log.format must be text or json, not '\(format)'")
            }
            try c.read(&level, .level)
            guard Logger.Level(rawValue: level) != nil else {
                throw GenWorkerError(.configuration, "log.level must be one of trace, debug, info, notice, warning, error, critical")
            }
        }
    }

    public struct CancelSection: Sendable, Equatable, Decodable {
        /// `cancel.authorize`: a cancel counts only from the job's submitter or an admin (AMQP `user_id`, checked by the broker).
        public var authorize = false
        /// `cancel.admins`: broker users who may cancel any job.
        public var admins: [String] = []

        package enum CodingKeys: String, CodingKey, CaseIterable { case authorize, admins }
        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&authorize, .authorize)
            try c.read(&admins, .admins)
        }
    }

    public struct DashboardSection: Sendable, Equatable, Decodable {
        /// `dashboard.enabled`: also serve the dashboard from inside `genworker run`
        /// (`genworker dashboard` serves it on its own either way).
        public var enabled = false
        /// `dashboard.address`: loopback by default; the dashboard is off the network until you say so.
        public var address = "127.0.0.1"
        /// `dashboard.port`: 0 picks a free port (logged).
        public var port = 8080
        /// `dashboard.users`: user name → bcrypt hash (`genworker hash-password`). Without
        /// users the dashboard is read-only; cancel and submit need a user (HTTP basic auth).
        public var users: [String: String] = [:]
        /// `dashboard.admins`: dashboard users who may cancel any job (others: the jobs they submitted).
        public var admins: [String] = []
        /// `dashboard.outputs_dir`: where the videos are, seen from the dashboard; when set, a job's page plays its video.
        public var outputsDir: String?
        /// `dashboard.max_jobs`: the most jobs kept in memory (the oldest ended ones go first).
        public var maxJobs = 100_000
        /// `dashboard.offline_after_s`: a worker silent this long is shown offline ...
        public var offlineAfterSeconds: Double = 90
        /// `dashboard.drop_after_s`: ... and this long, dropped from the list.
        public var dropAfterSeconds: Double = 3600

        package enum CodingKeys: String, CodingKey, CaseIterable {
            case enabled, address, port, users, admins
            case outputsDir = "outputs_dir"
            case maxJobs = "max_jobs"
            case offlineAfterSeconds = "offline_after_s"
            case dropAfterSeconds = "drop_after_s"
        }

        public init() {}
        public init(from decoder: Decoder) throws {
            self.init()
            let c = try ConfigReader(decoder, CodingKeys.self)
            try c.read(&enabled, .enabled)
            try c.read(&address, .address)
            try c.read(&port, .port, 0...65535)
            try c.read(&users, .users)
            try c.read(&admins, .admins)
            try c.read(&outputsDir, .outputsDir)
            try c.read(&maxJobs, .maxJobs, 100...10_000_000)
            try c.read(&offlineAfterSeconds, .offlineAfterSeconds, seconds: true)
            try c.read(&dropAfterSeconds, .dropAfterSeconds, seconds: true)
            for (user, hash) in users where !hash.hasPrefix("$2") {
                throw GenWorkerError(.configuration, "dashboard.users.\(user) must be a bcrypt hash (genworker hash-password), not a password")
            }
        }
    }

    public var amqp = AMQPSection()
    public var worker = WorkerSection()
    public var topology = TopologySection()
    public var wan = WanSection()
    public var inputs = InputsSection()
    public var outputs = OutputsSection()
    public var supervisor = SupervisorSection()
    public var jobs = JobsSection()
    public var env = EnvSection()
    public var progress = ProgressSection()
    public var shutdown = ShutdownSection()
    public var metrics = MetricsSection()
    public var log = LogSection()
    public var cancel = CancelSection()
    public var dashboard = DashboardSection()

    package enum CodingKeys: String, CodingKey, CaseIterable {
        case amqp, worker, topology, wan, inputs, outputs, supervisor, jobs, env, progress, shutdown, metrics, log, cancel, dashboard
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        self.init()
        let c = try ConfigReader(decoder, CodingKeys.self)
        try c.read(&amqp, .amqp)
        try c.read(&worker, .worker)
        try c.read(&topology, .topology)
        try c.read(&wan, .wan)
        try c.read(&inputs, .inputs)
        try c.read(&outputs, .outputs)
        try c.read(&supervisor, .supervisor)
        try c.read(&jobs, .jobs)
        try c.read(&env, .env)
        try c.read(&progress, .progress)
        try c.read(&shutdown, .shutdown)
        try c.read(&metrics, .metrics)
        try c.read(&log, .log)
        try c.read(&cancel, .cancel)
        try c.read(&dashboard, .dashboard)
    }

    /// Marks this worker's generators (`GENWORKER_OWNER`): the worker's name and its queue.
    /// The watchdog kills them when the worker dies; a restarted worker kills what is left.
    /// The largest ledger message a reader decodes: a claim holds a job body of up to
    /// `jobs.max_body_bytes` as a JSON string, which escaping can make six times larger.
    /// A claim skipped as too large would never come back to its writer and hold its slot.
    public var ledgerRecordLimit: Int { max(2 << 20, 6 * jobs.maxBodyBytes + (64 << 10)) }

    /// The accounts whose ledger records count (`topology.ledger_writers`); nil: any.
    public var ledgerWriters: Set<String>? {
        if topology.ledgerWriters.contains("*") { return nil }
        if !topology.ledgerWriters.isEmpty { return Set(topology.ledgerWriters) }
        return [(try? AMQPConfiguration(url: amqp.endpoints[0]))?.user ?? "guest"]
    }

    public var ownerToken: String {
        String("\(worker.name)@\(topology.jobsQueue)".map { $0.isLetter || $0.isNumber || "-_.@".contains($0) ? $0 : "_" })
    }

    /// The environment variables a worker reads, all of them: each overrides one key.
    public static let environmentOverrides: [(variable: String, key: String)] = [
        ("GENWORKER_AMQP_URL", "amqp.url"),  // a comma-separated list sets amqp.urls
        ("GENWORKER_WORKER_NAME", "worker.name"),
    ]

    /// The one place the environment changes a configuration (see ``environmentOverrides``).
    public mutating func applyEnvironment(_ environment: [String: String]) {
        if let url = environment["GENWORKER_AMQP_URL"], !url.isEmpty { amqp.setEndpoints(url) }
        if let name = environment["GENWORKER_WORKER_NAME"], !name.isEmpty { worker.name = name }
    }

    /// Reads the YAML file at `path` (or starts from the defaults when nil), applies the
    /// environment, and checks the result.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws(GenWorkerError)
        -> WorkerConfiguration
    {
        var configuration = WorkerConfiguration()
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw GenWorkerError(.configuration, "cannot read the config file \(path)")
            }
            configuration = try parse(yaml: text)
        }
        configuration.applyEnvironment(environment)
        try configuration.validate()
        return configuration
    }

    /// Parses YAML text (no environment, no cross-key checks).
    public static func parse(yaml: String) throws(GenWorkerError) -> WorkerConfiguration {
        let node: Node?
        do { node = try Yams.compose(yaml: yaml) } catch { throw GenWorkerError(.configuration, "the config is not valid YAML: \(error)") }
        guard let node else { return WorkerConfiguration() }
        guard node.mapping != nil else { throw GenWorkerError(.configuration, "the config must be a mapping of keys to values") }
        do {
            return try YAMLDecoder().decode(WorkerConfiguration.self, from: yaml)
        } catch let error as GenWorkerError {
            throw error
        } catch DecodingError.dataCorrupted(let context) where context.underlyingError is GenWorkerError {
            // Yams wraps what a section's init(from:) throws.
            throw context.underlyingError as! GenWorkerError
        } catch {
            throw GenWorkerError(.configuration, explainConfigurationError(error))
        }
    }

    /// Cross-key checks.
    public func validate() throws(GenWorkerError) {
        for url in amqp.endpoints {
            do { _ = try AMQPConfiguration(url: url) } catch {
                throw GenWorkerError(.configuration, "\(amqp.urls.isEmpty ? "amqp.url" : "amqp.urls"): \(error.message)")
            }
        }
        guard !wan.warm || wan.gpusPerJob == 1 else {
            throw GenWorkerError(
                .configuration,
                "wan.warm: multi-GPU jobs (wan.gpus_per_job \(wan.gpusPerJob)) run cold (torchrun); set wan.warm: false or wan.gpus_per_job: 1")
        }
        guard worker.lockDir.hasPrefix("/") else {
            throw GenWorkerError(.configuration, "worker.lock_dir: '\(worker.lockDir)' must be an absolute path")
        }
        guard jobs.defaultTimeoutSeconds <= jobs.maxTimeoutSeconds else {
            throw GenWorkerError(
                .configuration, "jobs.default_timeout_s (\(jobs.defaultTimeoutSeconds)) exceeds jobs.max_timeout_s (\(jobs.maxTimeoutSeconds))")
        }
        guard supervisor.graceSeconds <= 0.4 * jobs.leaseSeconds else {
            throw GenWorkerError(
                .configuration,
                "jobs.lease_s (\(jobs.leaseSeconds)) must be at least 2.5 × supervisor.grace_s (\(supervisor.graceSeconds)): an owner cut off from the ledger must stop its run, grace included, before the lease ends"
            )
        }
        guard !worker.tasks.isEmpty else { throw GenWorkerError(.configuration, "worker.tasks: serve at least one task") }
        guard !worker.name.isEmpty else { throw GenWorkerError(.configuration, "worker.name must not be empty") }
        for root in inputs.roots where !root.hasPrefix("/") {
            throw GenWorkerError(.configuration, "inputs.roots: '\(root)' must be an absolute path")
        }
        guard outputs.dir.hasPrefix("/") else { throw GenWorkerError(.configuration, "outputs.dir: '\(outputs.dir)' must be an absolute path") }
    }
}

extension WorkerConfiguration {
    /// What the supervisor takes from `supervisor.*`.
    public var supervisorOptions: SupervisorOptions {
        SupervisorOptions(grace: supervisor.grace, pollInterval: supervisor.pollInterval, logTailLines: supervisor.logTailLines)
    }
}

extension WorkerConfiguration {
    /// Every key the YAML may hold, as `section.key`, from the sections' `CodingKeys`
    /// (the README's reference and config/genworker.yaml are tested against it).
    package static var allKeys: [String] {
        func keys<K: CodingKey & CaseIterable>(_ section: CodingKeys, _: K.Type) -> [String] {
            K.allCases.map { "\(section.stringValue).\($0.stringValue)" }
        }
        return keys(.amqp, AMQPSection.CodingKeys.self) + keys(.worker, WorkerSection.CodingKeys.self)
            + keys(.topology, TopologySection.CodingKeys.self) + keys(.wan, WanSection.CodingKeys.self)
            + keys(.inputs, InputsSection.CodingKeys.self) + keys(.outputs, OutputsSection.CodingKeys.self)
            + keys(.supervisor, SupervisorSection.CodingKeys.self) + keys(.jobs, JobsSection.CodingKeys.self)
            + keys(.env, EnvSection.CodingKeys.self) + keys(.progress, ProgressSection.CodingKeys.self)
            + keys(.shutdown, ShutdownSection.CodingKeys.self) + keys(.metrics, MetricsSection.CodingKeys.self)
            + keys(.log, LogSection.CodingKeys.self) + keys(.cancel, CancelSection.CodingKeys.self)
            + keys(.dashboard, DashboardSection.CodingKeys.self)
    }
}
