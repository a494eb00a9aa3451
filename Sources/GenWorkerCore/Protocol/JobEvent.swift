import Foundation

/// The events a worker publishes to `genworker.events` with routing key `<id>.<event>`.
public enum JobEventKind: String, Sendable, Codable, CaseIterable {
    case started, progress, completed, failed, cancelled

    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// Why a job failed or was cancelled.
public enum JobReason: String, Sendable, Codable {
    case invalidJob = "invalid_job"
    case exitCode = "exit_code"
    case signal
    case timeout
    case noOutput = "no_output"
    case spawnFailed = "spawn_failed"
    /// `topology.delivery_limit` attempts ended with their worker gone (expired in the
    /// ledger: the job kills workers, or they keep dying under it): not run again.
    case deliveryLimit = "delivery_limit"
    case cancelledBeforeStart = "cancelled_before_start"
    case cancelledWhileRunning = "cancelled_while_running"
    /// An input URL could not be used: refused by the `egress` rules, not found, too large,
    /// too slow, or not the kind of file the param needs. Before any GPU time is spent.
    case invalidInput = "invalid_input"
    /// The video was made but could not be stored (`storage`, or the job's own `output.put_url`):
    /// it is kept on the worker's disk and `output` names it.
    case uploadFailed = "upload_failed"
    /// The GPU ran out of memory (`torch.OutOfMemoryError`): the job may succeed with
    /// `offload_model`, `convert_model_dtype`, `t5_cpu`, a smaller size or fewer frames, or on
    /// a larger GPU. The job's kind, not the machine's.
    case gpuOutOfMemory = "gpu_out_of_memory"
    /// A CUDA runtime or driver error (`CUDA error: …`, an illegal memory access, no device):
    /// the machine's GPU is in trouble, not the job. Counts toward `worker.quarantine_after`.
    case gpuError = "gpu_error"
    /// Killed by SIGKILL with no stop of ours: most likely the kernel's OOM killer (host RAM).
    case hostOutOfMemory = "host_out_of_memory"
    /// The machine's Python environment is broken (a missing module, FlashAttention on a GPU
    /// it does not support): every job fails there. Counts toward `worker.quarantine_after`.
    case environment

    /// Whether the failure says the machine is broken, not the job (quarantine counts these).
    public var isMachineFault: Bool { self == .gpuError || self == .environment }
}

/// The body of an event message (protocol v1; JSON Schema in docs/schemas/event.schema.json).
public struct JobEvent: Sendable, Codable, Equatable {
    public var version = 1
    public var id: String
    public var task: String?
    public var event: JobEventKind
    /// For terminal events: completed, failed or cancelled.
    public var status: JobEventKind?
    public var reason: JobReason?
    /// A sentence for people.
    public var message: String?
    /// The video on the worker's disk, when it stays there (`outputs.store: local`,
    /// `outputs.keep_local`, or an upload that failed).
    public var output: String?
    /// Where the stored video is: `s3://bucket/key`, or the job's own URL without its query.
    public var outputURI: String?
    /// A ready-to-use HTTPS URL of the stored video (a presigned GET, or a public URL).
    public var outputURL: String?
    /// The video's size in bytes and its SHA-256 (hex), when it was stored.
    public var outputBytes: Int64?
    public var outputSHA256: String?
    public var exitCode: Int32?
    public var signal: Int32?
    public var startedAt: Date?
    public var endedAt: Date?
    public var elapsedSeconds: Double?
    public var worker: String
    public var redelivered: Bool?
    public var logTail: [String]?
    public var step: String?
    public var progress: JobProgress?
    /// True when the job ran in a warm runner (`wan.warm`).
    public var warm: Bool?
    /// Seconds its pipeline took to build; 0 when a loaded one was reused (warm jobs).
    public var pipelineBuildSeconds: Double?

    public init(id: String, task: String?, event: JobEventKind, worker: String) {
        self.id = id
        self.task = task
        self.event = event
        self.worker = worker
        if event.isTerminal { status = event }
    }

    package enum CodingKeys: String, CodingKey {
        case version, id, task, event, status, reason, message, output, signal, worker, redelivered, step, progress
        case exitCode = "exit_code"
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case elapsedSeconds = "elapsed_s"
        case logTail = "log_tail"
        case warm
        case pipelineBuildSeconds = "pipeline_build_s"
        case outputURI = "output_uri"
        case outputURL = "output_url"
        case outputBytes = "output_bytes"
        case outputSHA256 = "output_sha256"
    }

    public func encoded() throws(GenWorkerError) -> [UInt8] { try ProtocolCoding.encode(self) }

    public static func decode(_ body: [UInt8]) throws -> JobEvent { try ProtocolCoding.decode(JobEvent.self, from: body) }
}

/// Progress as a `progress` event carries it.
public struct JobProgress: Sendable, Codable, Equatable {
    public var step: Int
    public var total: Int
    public var percent: Int
    public var etaSeconds: Int?
    public var phase: String?
    public var clip: Int?

    package enum CodingKeys: String, CodingKey {
        case step, total, percent, phase, clip
        case etaSeconds = "eta_s"
    }
}
