import AMQPTypes
import Foundation
import Yams

/// Everything a worker is configured with: one YAML file (default `config/genworker.yaml`),
/// then the environment. Each section (a file of its own, `AMQPSection.swift` and on) mirrors
/// a section of the YAML, key for key (snake_case there, camelCase here), and declares each
/// key once in its `keys`: the YAML name, the property and the check of its value; each
/// property's initial value is its one default, which config/genworker.yaml and the README's
/// reference repeat (tests hold them equal). An unknown key or a bad value stops the worker
/// at start with a message naming the key.
public struct WorkerConfiguration: Sendable, Equatable, Decodable, ConfigSection {
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
    public var api = APISection()
    public var storage = StorageSection()
    public var egress = EgressSection()
    public var webhooks = WebhooksSection()

    package static var keys: [ConfigKey<Self>] {
        [
            .section("amqp", \.amqp), .section("worker", \.worker), .section("topology", \.topology), .section("wan", \.wan),
            .section("inputs", \.inputs), .section("outputs", \.outputs), .section("supervisor", \.supervisor),
            .section("jobs", \.jobs), .section("env", \.env), .section("progress", \.progress), .section("shutdown", \.shutdown),
            .section("metrics", \.metrics), .section("log", \.log), .section("cancel", \.cancel),
            .section("dashboard", \.dashboard), .section("api", \.api), .section("storage", \.storage), .section("egress", \.egress),
            .section("webhooks", \.webhooks),
        ]
    }

    /// Every key the YAML may hold, as `section.key`, from the sections' `keys`
    /// (the README's reference and config/genworker.yaml are tested against it).
    package static var allKeys: [String] { keys.flatMap { section in section.children.map { "\(section.name).\($0)" } } }

    public init() {}
    public init(from decoder: Decoder) throws { try self.init(reading: decoder) }

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

    /// The brokers' `host:port`s (AMQP and AMQPS): URLs from jobs may never lead there.
    public var brokerEndpoints: [String] {
        amqp.endpoints.compactMap { try? AMQPConfiguration(url: $0) }.flatMap { endpoint in
            ["\(endpoint.host):\(endpoint.port)", "\(endpoint.host):15672"]
        }
    }

    /// Marks this worker's generators (`GENWORKER_OWNER`): the worker's name and its queue.
    /// The watchdog kills them when the worker dies; a restarted worker kills what is left.
    public var ownerToken: String {
        String("\(worker.name)@\(topology.jobsQueue)".map { $0.isLetter || $0.isNumber || "-_.@".contains($0) ? $0 : "_" })
    }

    /// The environment variables a worker reads, all of them: each overrides one key.
    public static let environmentOverrides: [(variable: String, key: String)] = overrides.map { ($0.variable, $0.key) }

    private static var overrides: [(variable: String, key: String, set: (inout WorkerConfiguration, String) -> Void)] {
        [
            ("GENWORKER_AMQP_URL", "amqp.url", { $0.amqp.setEndpoints($1) }),  // a comma-separated list sets amqp.urls
            ("GENWORKER_WORKER_NAME", "worker.name", { $0.worker.name = $1 }),
        ]
    }

    /// The one place the environment changes a configuration (see ``environmentOverrides``).
    public mutating func applyEnvironment(_ environment: [String: String]) {
        for override in Self.overrides {
            if let value = environment[override.variable], !value.isEmpty { override.set(&self, value) }
        }
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
        // A window holds several renewals and a carry of every run, so a reader that starts
        // now learns every running job from its owner before it may take a duplicate.
        guard topology.ledgerRetention >= 3 * jobs.leaseSeconds else {
            throw GenWorkerError(
                .configuration,
                "topology.ledger_retention_h (\(topology.ledgerRetention) s) must be at least 3 × jobs.lease_s (\(jobs.leaseSeconds) s): a reader must see every running job renewed inside its window"
            )
        }
        guard !worker.tasks.isEmpty else { throw GenWorkerError(.configuration, "worker.tasks: serve at least one task") }
        guard !worker.name.isEmpty else { throw GenWorkerError(.configuration, "worker.name must not be empty") }
        for root in inputs.roots where !root.hasPrefix("/") {
            throw GenWorkerError(.configuration, "inputs.roots: '\(root)' must be an absolute path")
        }
        guard outputs.dir.hasPrefix("/") else { throw GenWorkerError(.configuration, "outputs.dir: '\(outputs.dir)' must be an absolute path") }
        if outputs.store == .s3 && (!storage.isConfigured || storage.bucket.isEmpty) {
            throw GenWorkerError(.configuration, "outputs.store: s3 needs storage.endpoint and storage.bucket")
        }
        if !inputs.s3Buckets.isEmpty && !storage.isConfigured {
            throw GenWorkerError(.configuration, "inputs.s3_buckets needs storage.endpoint (s3:// inputs are read from the store)")
        }
        guard storage.partSizeMB <= storage.multipartThresholdMB else {
            throw GenWorkerError(
                .configuration,
                "storage.part_size_mb (\(storage.partSizeMB)) must not exceed storage.multipart_threshold_mb (\(storage.multipartThresholdMB))")
        }
        for network in egress.allowNetworks where IPNetwork(network) == nil {
            throw GenWorkerError(.configuration, "egress.allow_networks: '\(network)' is not an address or a CIDR block (e.g. 10.20.0.0/16)")
        }
    }
}

extension WorkerConfiguration {
    /// What the supervisor takes from `supervisor.*`.
    public var supervisorOptions: SupervisorOptions {
        SupervisorOptions(grace: supervisor.grace, pollInterval: supervisor.pollInterval, logTailLines: supervisor.logTailLines)
    }
}
