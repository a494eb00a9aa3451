extension WorkerConfiguration {
    public struct WanSection: Sendable, Equatable, Decodable, ConfigSection {
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

        package static var keys: [ConfigKey<Self>] {
            [
                .key("python", \.python),
                .key("repo", \.repo),
                .key("checkpoints", \.checkpoints),
                .number("gpus_per_job", \.gpusPerJob, 1...64),
                .key("torchrun", \.torchrun),
                .key("warm", \.warm),
                .key("warm_runner", \.warmRunner),
                .number("warm_max_jobs", \.warmMaxJobs, 1...1_000_000),
                .number("warm_max_rss_mb", \.warmMaxRSSMB, 0...10_000_000),
                .seconds("warm_idle_s", \.warmIdleSeconds),
            ]
        }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
