import Foundation

extension WorkerConfiguration {
    public struct WorkerSection: Sendable, Equatable, Decodable, ConfigSection {
        /// `worker.name` (env `GENWORKER_WORKER_NAME`): in results and logs; unique per queue. Default: the host name.
        public var name = ProcessInfo.processInfo.hostName
        /// `worker.slots`: jobs at once (= prefetch); each slot gets its own block of
        /// `wan.gpus_per_job` devices as `CUDA_VISIBLE_DEVICES` (``GPUAssignment``).
        public var slots = 1
        /// `worker.gpus`: the devices this worker may use (indices or UUIDs). Empty: the
        /// worker's own `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`.
        public var gpus: [String] = []
        /// `worker.tasks`: the tasks this worker serves (queue bindings). Default all five.
        public var tasks: [WanTask] = WanTask.allCases
        /// `worker.declare_topology`: declare exchanges and queues at start.
        public var declareTopology = true
        /// `worker.lock_dir`: where a live worker holds the lock on its identity (one worker per
        /// name and queue on a machine).
        public var lockDir = "/run/lock"
        /// `worker.quarantine_after`: this many jobs of one slot failing in a row for the
        /// machine's sake (`gpu_error`, `environment`; a completed job on that slot starts the
        /// count again) and the worker takes no more until its probe passes; 0: never.
        public var quarantineAfter = 3
        /// `worker.probe_command`: run every `probe_every_s` while quarantined (the first a
        /// period after the quarantine began), with every slot's GPUs in `CUDA_VISIBLE_DEVICES`;
        /// exit 0 ends the quarantine. Empty: `wan.python` runs a kernel on every device and
        /// imports flash_attn and Wan2.2's `wan` (``WanCommand/probeSpec(configuration:devices:)``).
        public var probeCommand: [String] = []
        /// `worker.probe_every_s`: how often a quarantined worker probes; also how long a worker
        /// takes no job after giving one back for a machine's fault (another worker should get it).
        public var probeEverySeconds: Double = 60

        package static var keys: [ConfigKey<Self>] {
            [
                .key("name", \.name),
                .number("slots", \.slots, 1...64),
                .key("gpus", \.gpus),
                .key("tasks", \.tasks, as: [String].self) { names in
                    try names.map { name in
                        guard let task = WanTask(rawValue: name) else {
                            throw GenWorkerError(
                                .configuration,
                                "worker.tasks: unknown task '\(name)' (known: \(WanTask.allCases.map(\.rawValue).joined(separator: ", ")))")
                        }
                        return task
                    }
                },
                .key("declare_topology", \.declareTopology),
                .key("lock_dir", \.lockDir),
                .number("quarantine_after", \.quarantineAfter, 0...1000),
                .key("probe_command", \.probeCommand),
                .seconds("probe_every_s", \.probeEverySeconds),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
