import Foundation
import Logging

/// Runs one validated job to its end under the supervisor and says how it ended.
/// Blocking: runs on the job's own thread.
struct JobRunner: Sendable {
    let configuration: WorkerConfiguration

    /// The terminal event, or nil when the run was stopped because its delivery was lost
    /// or the worker shuts down in requeue mode (the job runs again elsewhere; no result).
    func run(_ job: JobRequest, control: JobControl, redelivered: Bool, devices: String?, logger: Logger) -> JobEvent? {
        let outputPath = (configuration.outputsDirectory as NSString).appendingPathComponent("\(job.id).mp4")
        try? FileManager.default.createDirectory(atPath: configuration.outputsDirectory, withIntermediateDirectories: true)
        unlink(outputPath)
        let spec = WanCommand.processSpec(for: job, configuration: configuration, outputPath: outputPath, devices: devices)
        logger.info("running \(spec.executable) \(job.task.rawValue)", metadata: ["job": "\(job.id)"])
        let run = Supervisor.run(spec, options: configuration.supervisor, control: control,
                                 deadline: ContinuousClock.now + job.timeout) { line in
            logger.debug("\(line)", metadata: ["job": "\(job.id)"])
        }
        var event = JobEvent(id: job.id, task: job.task.rawValue, event: .failed, worker: configuration.worker.name)
        event.startedAt = run.startedAt
        event.endedAt = run.endedAt
        event.elapsedSeconds = (run.endedAt.timeIntervalSince(run.startedAt) * 1000).rounded() / 1000
        event.redelivered = redelivered
        event.logTail = run.logTail
        if case .exited(let code)? = run.termination { event.exitCode = code }
        if case .signaled(let signal)? = run.termination { event.signal = signal }

        func finish(_ kind: JobEventKind, _ reason: JobReason?, _ message: String) -> JobEvent {
            event.event = kind
            event.status = kind
            event.reason = reason
            event.message = message
            if kind == .completed { event.output = outputPath } else { unlink(outputPath) }
            return event
        }

        if let error = run.spawnError { return finish(.failed, .spawnFailed, error) }
        switch run.stopRequest {
        case .cancelled?:
            return finish(.cancelled, .cancelledWhileRunning,
                          run.killed ? "cancelled; the generator ignored SIGTERM and was killed after \(configuration.supervisor.grace)" : "cancelled while running")
        case .deliveryLost?, .shutdown?:
            unlink(outputPath)
            return nil
        case nil:
            break
        }
        if run.timedOut { return finish(.failed, .timeout, "timed out after \(job.timeout)") }
        switch run.termination {
        case .exited(0)?:
            var info = stat()
            if stat(outputPath, &info) == 0, info.st_size > 0 { return finish(.completed, nil, "completed") }
            return finish(.failed, .noOutput, "the generator exited 0 but wrote no video")
        case .exited(let code)?:
            return finish(.failed, .exitCode, "the generator exited with code \(code)")
        case .signaled(let signal)?:
            return finish(.failed, .signal, "the generator was killed by signal \(signal) (\(String(cString: strsignal(signal))))")
        case nil:
            return finish(.failed, .spawnFailed, "the generator did not run")
        }
    }
}
