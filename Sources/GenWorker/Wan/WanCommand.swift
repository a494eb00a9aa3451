import Foundation

/// Builds the generate.py command line of a job, as Wan2.2's README gives it for the task:
/// `python generate.py --task T --ckpt_dir DIR --save_file OUT <flags> <params>`, or with
/// `wan.gpus_per_job` > 1, `torchrun --nproc_per_node=N generate.py ... --dit_fsdp --t5_fsdp --ulysses_size N`.
public enum WanCommand {
    public static func processSpec(for job: JobRequest, configuration: WorkerConfiguration, outputPath: String,
                                   devices: String? = nil) -> ProcessSpec {
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
            arguments = ["--nproc_per_node=\(wan.gpusPerJob)", script] + generate
        } else {
            executable = wan.python
            generate += job.task.singleGPUFlags
            arguments = [script] + generate
        }
        arguments += job.arguments
        return ProcessSpec(executable: executable, arguments: arguments,
                           environment: childEnvironment(configuration: configuration, devices: devices),
                           workingDirectory: wan.repo)
    }

    /// animate-14B's preprocessing: `python wan/modules/animate/preprocess/preprocess_data.py
    /// --ckpt_path CKPT/Wan2.2-Animate-14B/process_checkpoint --save_path DIR --resolution_area 1280 720 ...`.
    public static func preprocessSpec(for job: JobRequest, configuration: WorkerConfiguration, workDirectory: String,
                                      devices: String? = nil) -> ProcessSpec {
        let wan = configuration.wan
        let script = (wan.repo as NSString).appendingPathComponent("wan/modules/animate/preprocess/preprocess_data.py")
        let checkpoint = ((wan.checkpoints as NSString).appendingPathComponent(job.task.checkpointDirectory) as NSString)
            .appendingPathComponent("process_checkpoint")
        let arguments = [script, "--ckpt_path", checkpoint, "--save_path", workDirectory, "--resolution_area", "1280", "720"]
            + (job.preprocessArguments ?? [])
        return ProcessSpec(executable: wan.python, arguments: arguments,
                           environment: childEnvironment(configuration: configuration, devices: devices),
                           workingDirectory: wan.repo)
    }

    /// The generator's environment: clean, never the worker's own (which holds the AMQP URL).
    /// PATH, HOME, LANG, TMPDIR, the CUDA/NVIDIA variables, `env.pass` names and `env.set` values.
    public static func childEnvironment(configuration: WorkerConfiguration, devices: String?,
                                        from parent: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
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
        for key in configuration.passEnvironment { if let value = parent[key] { environment[key] = value } }
        for (key, value) in configuration.setEnvironment { environment[key] = value }
        if let devices { environment["CUDA_VISIBLE_DEVICES"] = devices }
        // Marks every process of this worker's jobs for the watchdog and for a restarted worker.
        environment["GENWORKER_OWNER"] = configuration.ownerToken
        // Secrets of the worker never reach the generator, whatever the config says.
        for key in environment.keys where key.hasPrefix("GENWORKER_AMQP") { environment[key] = nil }
        return environment
    }
}
