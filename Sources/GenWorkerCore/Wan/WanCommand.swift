import Foundation

/// Builds the generate.py command line of a job, as Wan2.2's README gives it for the task:
/// `python generate.py --task T --ckpt_dir DIR --save_file OUT <flags> <params>`, or with
/// `wan.gpus_per_job` > 1, `torchrun --standalone --nproc_per_node=N generate.py ... --dit_fsdp --t5_fsdp --ulysses_size N`.
public enum WanCommand {
    /// `preprocessedInto`: the directory preprocessing wrote (animate-14B from raw inputs),
    /// passed as `--src_root_path`.
    public static func processSpec(
        for job: JobRequest, configuration: WorkerConfiguration, outputPath: String,
        devices: String? = nil, preprocessedInto: String? = nil
    ) -> ProcessSpec {
        let wan = configuration.wan
        let script = (wan.repo as NSString).appendingPathComponent("generate.py")
        var generate = [
            "--task", job.task.rawValue,
            "--ckpt_dir", (wan.checkpoints as NSString).appendingPathComponent(job.task.checkpointDirectory),
            "--save_file", outputPath,
        ]
        let executable: String
        var arguments: [String]
        if wan.gpusPerJob > 1 {
            executable = wan.torchrun
            generate += ["--dit_fsdp", "--t5_fsdp", "--ulysses_size", String(wan.gpusPerJob)]
            // --standalone: a rendezvous on a free local port. Without it every torchrun binds
            // 29500, and a second multi-GPU slot's job fails with "Address already in use".
            arguments = ["--standalone", "--nproc_per_node=\(wan.gpusPerJob)", script] + generate
        } else {
            executable = wan.python
            generate += job.task.singleGPUFlags
            arguments = [script] + generate
        }
        arguments += generateArguments(for: job)
        if let preprocessedInto { arguments += ["--src_root_path", preprocessedInto] }
        return ProcessSpec(
            executable: executable, arguments: arguments,
            environment: childEnvironment(configuration: configuration, devices: devices),
            workingDirectory: wan.repo)
    }

    /// animate-14B's preprocessing: `python wan/modules/animate/preprocess/preprocess_data.py
    /// --ckpt_path CKPT/Wan2.2-Animate-14B/process_checkpoint --save_path DIR --resolution_area 1280 720 ...`.
    public static func preprocessSpec(
        for job: JobRequest, configuration: WorkerConfiguration, workDirectory: String,
        devices: String? = nil
    ) -> ProcessSpec {
        let wan = configuration.wan
        let script = (wan.repo as NSString).appendingPathComponent("wan/modules/animate/preprocess/preprocess_data.py")
        let checkpoint = ((wan.checkpoints as NSString).appendingPathComponent(job.task.checkpointDirectory) as NSString)
            .appendingPathComponent("process_checkpoint")
        let arguments =
            [script, "--ckpt_path", checkpoint, "--save_path", workDirectory, "--resolution_area", "1280", "720"]
            + preprocessArguments(for: job)
        return ProcessSpec(
            executable: wan.python, arguments: arguments,
            environment: childEnvironment(configuration: configuration, devices: devices),
            workingDirectory: wan.repo)
    }

    /// Whether the job runs preprocessing before generate.py (animate-14B from raw inputs).
    public static func preprocesses(_ job: JobRequest) -> Bool {
        job.task.preprocesses(givenParameters: Set(job.parameters.map(\.name)))
    }

    /// generate.py's options from the job's params, in name order: `--name value`, a flag as
    /// `--name` when true; then the worker's defaults for params the job left out. With
    /// preprocessing, the raw-input options go to preprocess_data.py instead (replace_flag to both).
    public static func generateArguments(for job: JobRequest) -> [String] {
        let preprocessing = preprocesses(job)
        var arguments: [String] = []
        for parameter in job.parameters {
            if preprocessing && WanTask.preprocessParameters.contains(parameter.name) && parameter.name != "replace_flag" { continue }
            arguments += option(parameter)
        }
        for (name, value) in job.task.defaultParameters where job.parameter(name) == nil {
            arguments += ["--\(name)", value]
        }
        return arguments
    }

    /// preprocess_data.py's options from the job's raw-input params (empty without preprocessing).
    public static func preprocessArguments(for job: JobRequest) -> [String] {
        guard preprocesses(job) else { return [] }
        return job.parameters.filter { WanTask.preprocessParameters.contains($0.name) }.flatMap(option)
    }

    /// One param as command-line words. Numbers print as Swift prints them (`5.0`), as before.
    package static func option(_ parameter: JobParameter) -> [String] {
        let flag = "--\(parameter.name)"
        switch parameter.value {
        case .text(let s), .path(let s): return [flag, s]
        case .integer(let i): return [flag, String(i)]
        case .number(let d): return [flag, String(d)]
        case .flag(let on): return on ? [flag] : []
        // JobRunner gives the generator the fetched copy (JobRequest.localized); a URL never reaches it.
        case .remote(let input, _): return [flag, input.redacted]
        }
    }

    /// The quarantine probe (`worker.probe_command`, run with every slot's devices). The
    /// default asks what a job needs, not only whether CUDA answers: a kernel on every device,
    /// FlashAttention and Wan2.2's own modules (from `wan.repo`) importable.
    public static func probeSpec(configuration: WorkerConfiguration, devices: String) -> ProcessSpec {
        let command =
            configuration.worker.probeCommand.isEmpty
            ? [configuration.wan.python, "-c", defaultProbe, configuration.wan.repo] : configuration.worker.probeCommand
        return ProcessSpec(
            executable: command[0], arguments: Array(command.dropFirst()),
            environment: childEnvironment(configuration: configuration, devices: devices.isEmpty ? nil : devices))
    }

    static let defaultProbe = """
        import sys, torch
        assert torch.cuda.is_available(), "no CUDA device"
        for index in range(torch.cuda.device_count()):
            assert torch.ones(1, device=f"cuda:{index}").add(1).item() == 2, f"cuda:{index} computes wrong"
        import flash_attn
        sys.path.insert(0, sys.argv[1])
        import wan
        """

    /// The generator's environment: clean, never the worker's own (which holds the AMQP URL).
    /// PATH, HOME, LANG, TMPDIR, the CUDA/NVIDIA variables, `env.pass` names and `env.set` values.
    public static func childEnvironment(
        configuration: WorkerConfiguration, devices: String?,
        from parent: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String: String] {
        var environment: [String: String] = [
            "PATH": parent["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
            "HOME": parent["HOME"] ?? "/tmp",
            "LANG": parent["LANG"] ?? "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        ]
        if let tmp = parent["TMPDIR"] { environment["TMPDIR"] = tmp }
        for (key, value) in parent where key.hasPrefix("CUDA_") || key.hasPrefix("NVIDIA_") {
            environment[key] = value
        }
        for key in configuration.env.pass { if let value = parent[key] { environment[key] = value } }
        for (key, value) in configuration.env.set { environment[key] = value }
        if let devices { environment["CUDA_VISIBLE_DEVICES"] = devices }
        // Marks every process of this worker's jobs for the watchdog and for a restarted worker.
        environment["GENWORKER_OWNER"] = configuration.ownerToken
        // Secrets of the worker never reach the generator, whatever the config says.
        for key in environment.keys where key.hasPrefix("GENWORKER_AMQP") { environment[key] = nil }
        return environment
    }
}
