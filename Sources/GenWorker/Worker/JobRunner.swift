import Foundation
import Logging

/// Runs one validated job to its end under the supervisor and says how it ended.
/// A job is one or more steps (animate-14B from raw inputs: preprocess, then generate);
/// a cancel, timeout or failure in a step ends the job there. Blocking: runs on the job's own thread.
struct JobRunner: Sendable {
    let configuration: WorkerConfiguration

    /// The terminal event, or nil when the run was stopped because its delivery was lost
    /// or the worker shuts down in requeue mode (the job runs again elsewhere; no result).
    func run(_ job: JobRequest, control: JobControl, redelivered: Bool, devices: String?, logger: Logger,
             isShuttingDown: () -> Bool = { false }, onProgress: (JobEvent) -> Void = { _ in }) -> JobEvent? {
        let outputs = configuration.outputs.dir as NSString
        let outputPath = outputs.appendingPathComponent("\(job.id).mp4")
        let workDirectory = outputs.appendingPathComponent("\(job.id).work")
        try? FileManager.default.createDirectory(atPath: configuration.outputs.dir, withIntermediateDirectories: true)
        unlink(outputPath)
        defer { try? FileManager.default.removeItem(atPath: workDirectory) }

        var steps: [(name: String, spec: ProcessSpec)] = []
        var generateJob = job
        if WanCommand.preprocesses(job) {
            try? FileManager.default.removeItem(atPath: workDirectory)
            steps.append(("preprocess", WanCommand.preprocessSpec(for: job, configuration: configuration,
                                                                   workDirectory: workDirectory, devices: devices)))
            generateJob.parameters.append(JobParameter("src_root_path", .path(workDirectory)))
        }
        steps.append(("generate", WanCommand.processSpec(for: generateJob, configuration: configuration,
                                                         outputPath: outputPath, devices: devices)))

        var event = JobEvent(id: job.id, task: job.task.rawValue, event: .failed, worker: configuration.worker.name)
        event.redelivered = redelivered
        let deadline = ContinuousClock.now + job.timeout

        func finish(_ kind: JobEventKind, _ reason: JobReason?, _ message: String) -> JobEvent {
            event.event = kind
            event.status = kind
            event.reason = reason
            event.message = message
            if kind == .completed { event.output = outputPath } else { unlink(outputPath) }
            return event
        }

        for (index, step) in steps.enumerated() {
            let isLast = index == steps.count - 1
            event.step = step.name
            logger.info("\(step.name): \(step.spec.executable) \(job.task.rawValue)", metadata: ["job": "\(job.id)"])
            var parser = ProgressParser()
            var lastProgress: ContinuousClock.Instant?
            var lastPhase: String?
            let run = Supervisor.run(step.spec, options: configuration.supervisorOptions, control: control, deadline: deadline) { line in
                logger.debug("\(line)", metadata: ["job": "\(job.id)", "step": "\(step.name)"])
                guard parser.consume(line), let progress = parser.progress else { return }
                // At most one progress event per interval; a new phase goes out at once.
                let now = ContinuousClock.now
                if let lastProgress, now - lastProgress < configuration.progress.interval, progress.phase == lastPhase { return }
                lastProgress = now
                lastPhase = progress.phase
                var update = JobEvent(id: job.id, task: job.task.rawValue, event: .progress, worker: configuration.worker.name)
                update.progress = progress
                update.step = step.name
                onProgress(update)
            }
            let jobStartedAt = event.startedAt ?? run.startedAt
            event.startedAt = jobStartedAt
            event.endedAt = run.endedAt
            event.elapsedSeconds = (run.endedAt.timeIntervalSince(jobStartedAt) * 1000).rounded() / 1000
            event.logTail = run.logTail
            event.exitCode = nil
            event.signal = nil
            if case .exited(let code)? = run.termination { event.exitCode = code }
            if case .signaled(let signal)? = run.termination { event.signal = signal }
            let prefix = steps.count > 1 ? "\(step.name): " : ""

            if let error = run.spawnError { return finish(.failed, .spawnFailed, prefix + error) }
            switch run.stopRequest {
            case .cancelled?:
                return finish(.cancelled, .cancelledWhileRunning,
                              prefix + (run.killed ? "cancelled; the process ignored SIGTERM and was killed after \(configuration.supervisor.grace)" : "cancelled while running"))
            case .deliveryLost?, .shutdown?:
                unlink(outputPath)
                return nil
            case nil:
                break
            }
            if run.timedOut { return finish(.failed, .timeout, prefix + "timed out after \(job.timeout)") }
            // systemd's KillMode=control-group and container runtimes signal every process at
            // shutdown: a generator killed that way is not the job's fault; give the job back.
            if case .signaled(let signal)? = run.termination, [SIGTERM, SIGINT].contains(signal), isShuttingDown() {
                logger.warning("the generator got SIGTERM from outside during shutdown; the job goes back to the queue", metadata: ["job": "\(job.id)"])
                unlink(outputPath)
                return nil
            }
            switch run.termination {
            case .exited(0)?:
                if isLast {
                    var info = stat()
                    if stat(outputPath, &info) == 0, info.st_size > 0 { return finish(.completed, nil, "completed") }
                    return finish(.failed, .noOutput, prefix + "the generator exited 0 but wrote no video")
                }
                let expected = ["src_pose.mp4", "src_face.mp4", "src_ref.png"]
                if let missing = expected.first(where: { !FileManager.default.fileExists(atPath: (workDirectory as NSString).appendingPathComponent($0)) }) {
                    return finish(.failed, .noOutput, prefix + "exited 0 but wrote no \(missing)")
                }
            case .exited(let code)?:
                return finish(.failed, .exitCode, prefix + "exited with code \(code)")
            case .signaled(let signal)?:
                return finish(.failed, .signal, prefix + "killed by signal \(signal) (\(String(cString: strsignal(signal))))")
            case nil:
                return finish(.failed, .spawnFailed, prefix + "did not run")
            }
        }
        return finish(.failed, .spawnFailed, "no step ran")
    }
}
