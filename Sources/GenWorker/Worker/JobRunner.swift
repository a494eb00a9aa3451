import Foundation
import GenWorkerCore
import Logging
import Supervision

/// Runs one validated job to its end under the supervisor and says how it ended.
/// A job is one or more steps (animate-14B from raw inputs: preprocess, then generate);
/// a cancel, timeout or failure in a step ends the job there. Blocking: runs on the job's own thread.
struct JobRunner: Sendable {
    let configuration: WorkerConfiguration

    /// The terminal event, or nil when the run was stopped because it lost its ownership
    /// or the worker shuts down in requeue mode (the job runs again elsewhere; no result).
    /// `warm`: the slot's warm runner, when `wan.warm` is on (the generate step runs there).
    /// Everything the run writes stays in its own directory (``runDirectory(outputs:id:attempt:)``);
    /// a completed event names the job's final path, where ``promote(outputs:id:attempt:)``
    /// moves the video once the ledger takes this attempt's end as the job's result.
    func run(
        _ job: JobRequest, attempt: Int, control: JobControl, redelivered: Bool, devices: String?, logger: Logger,
        warm: WarmRunner? = nil, metrics: WorkerMetrics = WorkerMetrics(),
        isShuttingDown: () -> Bool = { false }, onProgress: (JobEvent) -> Void = { _ in }
    ) -> JobEvent? {
        let runDirectory = Self.runDirectory(outputs: configuration.outputs.dir, id: job.id, attempt: attempt)
        let outputPath = (runDirectory as NSString).appendingPathComponent("\(job.id).mp4")
        let workDirectory = (runDirectory as NSString).appendingPathComponent("work")
        let inputsDirectory = (runDirectory as NSString).appendingPathComponent("inputs")
        let transferFiles = ["fetch.plan.json", "fetch.report.json", "upload.plan.json", "upload.report.json"].map {
            (runDirectory as NSString).appendingPathComponent($0)
        }
        try? FileManager.default.removeItem(atPath: runDirectory)
        try? FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: workDirectory)
            try? FileManager.default.removeItem(atPath: inputsDirectory)
            for file in transferFiles { unlink(file) }  // a plan may hold the job's presigned URL
            rmdir(runDirectory)  // gone when empty (a real generate.py writes nothing else)
        }

        var steps: [(name: JobStep, spec: ProcessSpec)] = []
        var job = job
        if !job.remoteInputs.isEmpty {
            try? FileManager.default.createDirectory(atPath: inputsDirectory, withIntermediateDirectories: true)
            var plan = TransferPlan(job: job.id, configuration: configuration)
            var local: [String: String] = [:]
            for input in job.remoteInputs {
                let destination = (inputsDirectory as NSString).appendingPathComponent(
                    TransferStep.inputFileName(param: input.name, source: input.input, media: input.media))
                plan.fetches.append(.init(param: input.name, source: input.input, media: input.media, destination: destination))
                local[input.name] = destination
            }
            steps.append((.fetch, transferSpec(plan, plan: transferFiles[0], report: transferFiles[1])))
            job = job.localized(local)
        }
        var preprocessedInto: String?
        if WanCommand.preprocesses(job) {
            try? FileManager.default.removeItem(atPath: workDirectory)
            steps.append(
                (
                    .preprocess,
                    WanCommand.preprocessSpec(
                        for: job, configuration: configuration,
                        workDirectory: workDirectory, devices: devices)
                ))
            preprocessedInto = workDirectory
        }
        steps.append(
            (
                .generate,
                WanCommand.processSpec(
                    for: job, configuration: configuration, outputPath: outputPath,
                    devices: devices, preprocessedInto: preprocessedInto)
            ))
        if configuration.outputs.store == .s3 || job.output != nil {
            var plan = TransferPlan(job: job.id, configuration: configuration)
            let key = TransferStep.outputKey(prefix: configuration.outputs.prefix, id: job.id, attempt: attempt)
            plan.upload = .init(file: outputPath, target: job.output.map { .url($0) } ?? .store(key: key))
            steps.append((.upload, transferSpec(plan, plan: transferFiles[2], report: transferFiles[3])))
        }

        var event = JobEvent(id: job.id, task: job.task.rawValue, event: .failed, worker: configuration.worker.name)
        event.redelivered = redelivered
        let deadline = ContinuousClock.now + job.timeout

        var stored: TransferReport.Stored?
        func finish(_ kind: JobEventKind, _ reason: JobReason?, _ message: String) -> JobEvent {
            event.event = kind
            event.status = kind
            event.reason = reason
            event.message = message
            event.outputURI = stored?.uri
            event.outputURL = stored?.url
            event.outputBytes = stored?.bytes
            event.outputSHA256 = stored?.sha256
            // A video stays on the disk when it is the result (no store, or `keep_local`), and
            // when its upload failed for any reason (the store, the job's timeout running out
            // during the upload, a crash): nothing made is lost; otherwise it goes once stored.
            let uploadFailed = kind == .failed && event.step == JobStep.upload.rawValue
            if (kind == .completed && (stored == nil || configuration.outputs.keepLocal)) || uploadFailed {
                event.output = Self.finalPath(outputs: configuration.outputs.dir, id: job.id)
            } else {
                unlink(outputPath)
            }
            return event
        }

        for (index, step) in steps.enumerated() {
            let isLast = index == steps.count - 1
            event.step = step.name.rawValue
            logger.info("\(step.name.rawValue): \(step.spec.executable) \(job.task.rawValue)", metadata: ["job": "\(job.id)"])
            var parser = ProgressParser()
            var lastProgress: ContinuousClock.Instant?
            var lastPhase: String?
            func onLine(_ line: String) {
                logger.debug("\(line)", metadata: ["job": "\(job.id)", "step": "\(step.name.rawValue)"])
                guard parser.consume(line), let progress = parser.progress else { return }
                // At most one progress event per interval; a new phase goes out at once.
                let now = ContinuousClock.now
                if let lastProgress, now - lastProgress < configuration.progress.interval, progress.phase == lastPhase { return }
                lastProgress = now
                lastPhase = progress.phase
                var update = JobEvent(id: job.id, task: job.task.rawValue, event: .progress, worker: configuration.worker.name)
                update.progress = progress
                update.step = step.name.rawValue
                onProgress(update)
            }
            let run: SupervisedRun
            if let warm, step.name == .generate {
                // The same argv as a cold run, without the script: the runner calls generate.py's own code.
                let warmRun = warm.run(
                    id: job.id, arguments: Array(step.spec.arguments.dropFirst()), supervisor: configuration.supervisorOptions,
                    control: control, deadline: deadline, onLine: onLine)
                run = warmRun.run
                event.warm = true
                event.pipelineBuildSeconds = warmRun.pipelineBuildSeconds
                if warmRun.runnerStarted && warm.restarts > 0 { metrics.runnerRestarted() }
                if let reused = warmRun.pipelineReused { reused ? metrics.pipelineReused() : metrics.pipelineBuilt() }
            } else {
                run = Supervisor.run(step.spec, options: configuration.supervisorOptions, control: control, deadline: deadline, onLine: onLine)
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
            let prefix = steps.count > 1 ? "\(step.name.rawValue): " : ""
            let outcome = StepOutcome.classify(
                run, prefix: prefix, timeout: job.timeout, grace: configuration.supervisor.grace,
                isShuttingDown: isShuttingDown(), echoed: job.texts
            ) {
                switch step.name {
                case .generate:
                    var info = stat()
                    return stat(outputPath, &info) == 0 && info.st_size > 0 ? nil : "the generator exited 0 but wrote no video"
                case .preprocess:
                    let expected = ["src_pose.mp4", "src_face.mp4", "src_ref.png"]
                    return expected.first { !FileManager.default.fileExists(atPath: (workDirectory as NSString).appendingPathComponent($0)) }
                        .map { "exited 0 but wrote no \($0)" }
                case .fetch, .upload:
                    return nil
                }
            }
            if step.name == .upload, case .nextStep = outcome {
                guard let report = Self.readReport(transferFiles[3]), let report = report.stored else {
                    return finish(.failed, .uploadFailed, "upload: the transfer reported nothing")
                }
                stored = report
            }
            switch Self.transferOutcome(outcome, step: step.name, run: run) {
            case .nextStep:
                if isLast { return finish(.completed, nil, "completed") }
            case .ended(let kind, let reason, let message):
                return finish(kind, reason, message)
            case .abandoned(let why):
                if let why { logger.warning("\(why); the job goes back to the queue", metadata: ["job": "\(job.id)"]) }
                unlink(outputPath)
                return nil
            }
        }
        return finish(.failed, .spawnFailed, "no step ran")
    }

    /// A `fetch` or `upload` step's process, for `plan` (written to `plan`, its report to `report`).
    private func transferSpec(_ transfer: TransferPlan, plan: String, report: String) -> ProcessSpec {
        if let data = try? JSONEncoder().encode(transfer) { FileManager.default.createFile(atPath: plan, contents: data) }
        return TransferStep.spec(
            program: SessionSpawn.besideExecutable("genworker"), plan: plan, report: report,
            fetchTimeoutSeconds: configuration.inputs.fetchTimeoutSeconds, owner: configuration.ownerToken)
    }

    static func readReport(_ path: String) -> TransferReport? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(TransferReport.self, from: $0) }
    }

    /// A transfer step's exit status says which failure it was (``TransferExit``); its last
    /// line says what, naming the URL or the store and the HTTP status.
    static func transferOutcome(_ outcome: StepOutcome, step: JobStep, run: SupervisedRun) -> StepOutcome {
        guard step == .fetch || step == .upload, case .ended(.failed, .exitCode, let message) = outcome,
            case .exited(let code)? = run.termination, let exit = TransferExit(rawValue: code)
        else { return outcome }
        let said = run.logTail.last.map { "\(step.rawValue): \($0)" } ?? message
        switch exit {
        case .invalidInput: return .ended(.failed, .invalidInput, said)
        case .uploadFailed: return .ended(.failed, .uploadFailed, said)
        case .done, .badPlan, .fetchFailed: return .ended(.failed, .exitCode, said)
        }
    }

    /// Where attempt `attempt` of `id` writes its video and work files: a directory of its own,
    /// so a stale run (one that lost its attempt and is being stopped) never touches the files
    /// of the attempt that won, nor they its.
    static func runDirectory(outputs: String, id: String, attempt: Int) -> String {
        (outputs as NSString).appendingPathComponent(".runs/\(id).\(attempt)")
    }

    /// The job's video, once its result is decided: `<outputs.dir>/<id>.mp4`.
    static func finalPath(outputs: String, id: String) -> String { (outputs as NSString).appendingPathComponent("\(id).mp4") }

    /// Moves attempt `attempt`'s video to the job's final path (its end is the job's result).
    static func promote(outputs: String, id: String, attempt: Int) throws(GenWorkerError) {
        let directory = runDirectory(outputs: outputs, id: id, attempt: attempt)
        let from = (directory as NSString).appendingPathComponent("\(id).mp4")
        guard rename(from, finalPath(outputs: outputs, id: id)) == 0 else {
            throw GenWorkerError(
                .outputUnavailable, "cannot move \(from) to \(finalPath(outputs: outputs, id: id)): \(String(cString: strerror(errno)))")
        }
        rmdir(directory)
    }
}
