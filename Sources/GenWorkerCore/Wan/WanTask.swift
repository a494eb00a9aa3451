/// The Wan2.2 tasks generate.py knows (`--task`), with the rules its README and code give
/// (shared/wan22-facts.md): sizes, parameters, required inputs, checkpoints.
public enum WanTask: String, CaseIterable, Sendable, Codable {
    case t2vA14B = "t2v-A14B"
    case i2vA14B = "i2v-A14B"
    case ti2v5B = "ti2v-5B"
    case s2v14B = "s2v-14B"
    case animate14B = "animate-14B"

    /// The checkpoint folder under `wan.checkpoints`.
    public var checkpointDirectory: String {
        switch self {
        case .t2vA14B: "Wan2.2-T2V-A14B"
        case .i2vA14B: "Wan2.2-I2V-A14B"
        case .ti2v5B: "Wan2.2-TI2V-5B"
        case .s2v14B: "Wan2.2-S2V-14B"
        case .animate14B: "Wan2.2-Animate-14B"
        }
    }

    /// The `--size` values this task supports (s2v: all eight, the script skips the check).
    public var sizes: [String] {
        switch self {
        case .t2vA14B, .i2vA14B: ["720*1280", "1280*720", "480*832", "832*480"]
        case .ti2v5B: ["704*1280", "1280*704"]
        case .animate14B: ["720*1280", "1280*720"]
        case .s2v14B: ["720*1280", "1280*720", "480*832", "832*480", "704*1280", "1280*704", "1024*704", "704*1024"]
        }
    }

    /// The job `params` this task accepts: generate.py's option names without the dashes.
    public var parameters: [String: WanParameter] {
        var p: [String: WanParameter] = [
            "size": .choice(sizes),
            "base_seed": .integer(-1...4_294_967_295),
            "sample_steps": .integer(1...1000),
            "sample_shift": .number(0.0...100.0),
            "sample_guide_scale": .number(0.0...50.0),
            "sample_solver": .choice(["unipc", "dpm++"]),
        ]
        switch self {
        case .t2vA14B, .i2vA14B, .ti2v5B:
            p["prompt"] = .text
            p["frame_num"] = .frameCount
            if self != .t2vA14B { p["image"] = .inputFile(.image) }
        case .s2v14B:
            p["prompt"] = .text
            p["image"] = .inputFile(.image)
            p["audio"] = .inputFile(.audio)
            p["pose_video"] = .inputFile(.video)
            p["num_clip"] = .integer(1...1000)
            p["infer_frames"] = .multipleOf4(4...1000)
            p["start_from_ref"] = .flag
        case .animate14B:
            p["frame_num"] = .frameCount
            p["src_root_path"] = .inputDirectory
            // Or raw inputs, preprocessed first (preprocess_data.py) into a per-job directory.
            p["video_path"] = .inputFile(.video)
            p["refer_path"] = .inputFile(.image)
            p["retarget_flag"] = .flag
            p["use_flux"] = .flag
            p["fps"] = .integer(1...120)
            p["refert_num"] = .integer(1...77)
            p["replace_flag"] = .flag
            p["use_relighting_lora"] = .flag
        }
        return p
    }

    /// Params a job must give. generate.py would silently use its own example files for a
    /// missing `image` (i2v, s2v) or `audio` (s2v), so the worker insists on them.
    public var requiredParameters: [String] {
        switch self {
        case .t2vA14B: ["prompt"]
        case .i2vA14B: ["prompt", "image"]
        case .ti2v5B: ["prompt"]
        case .s2v14B: ["prompt", "image", "audio"]
        case .animate14B: []  // src_root_path, or video_path and refer_path: JobValidator checks
        }
    }

    /// Params that belong to animate's preprocessing step (`replace_flag` goes to both steps).
    public static let preprocessParameters: Set<String> = ["video_path", "refer_path", "retarget_flag", "use_flux", "fps", "replace_flag"]

    /// Preprocessing options that mean nothing to generate.py on a preprocessed `src_root_path`.
    public static let preprocessOnlyParameters: Set<String> = ["retarget_flag", "use_flux", "fps"]

    /// Whether a job with these params runs animate-14B's preprocessing first (raw inputs given).
    public func preprocesses(givenParameters names: Set<String>) -> Bool {
        self == .animate14B && !names.contains("src_root_path")
    }

    /// Params the worker sets when the job does not: animate's default `refert_num` 77 breaks with 77 frames.
    public var defaultParameters: [(String, String)] {
        self == .animate14B ? [("refert_num", "1")] : []
    }

    /// Flags of the README's single-GPU invocation for this task.
    public var singleGPUFlags: [String] {
        switch self {
        case .animate14B: []
        case .ti2v5B: ["--offload_model", "True", "--convert_model_dtype", "--t5_cpu"]
        default: ["--offload_model", "True", "--convert_model_dtype"]
        }
    }
}

/// What one job parameter may hold.
public enum WanParameter: Sendable, Equatable {
    /// A non-empty string without NUL bytes (prompts), at most 20,000 characters.
    case text
    case integer(ClosedRange<Int64>)
    case number(ClosedRange<Double>)
    case choice([String])
    /// Of the form 4n+1, 5 to 1001.
    case frameCount
    case multipleOf4(ClosedRange<Int64>)
    /// A file that exists under one of `inputs.roots` (symlinks followed), or a URL
    /// (`inputs.urls`, `inputs.s3_buckets`) fetched before the generator starts; what it holds.
    case inputFile(InputRole)
    /// A directory that exists under one of `inputs.roots`.
    case inputDirectory
    /// `true` adds the flag; `false` leaves it out.
    case flag
}

/// The steps of a job: animate-14B from raw inputs runs preprocess_data.py first; every job
/// runs generate.py. A job's events name the step (`step`).
public enum JobStep: String, Sendable {
    /// Inputs given as URLs are downloaded into the run's folder (`genworker transfer`).
    case fetch
    case preprocess
    case generate
    /// The video goes to the object store or the job's own URL (`genworker transfer`).
    case upload
}
