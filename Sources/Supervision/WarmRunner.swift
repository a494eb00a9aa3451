import CProcessShims
import Foundation
import GenWorkerCore
import Synchronization
import WakePipe

#if canImport(Glibc)
    import Glibc
#endif

/// One job as the runner reads it on its fd 3.
package struct WarmCommand: Encodable {
    package var id: String
    package var argv: [String]
}

/// What the runner says on its fd 4: `ready`, then per job `done` (with `code`) or `stopped`,
/// with the pipeline's build seconds and whether it was reused.
package struct WarmReport: Decodable {
    package enum Kind: String, Decodable {
        /// The runner is up and waits for jobs.
        case ready
        /// The job ran to its end (`code`: generate.py's exit code).
        case done
        /// The job was stopped (SIGUSR1); the stop request says how it ended.
        case stopped
    }

    package var id: String?
    package var event: Kind
    package var code: Int?
    package var buildSeconds: Double?
    package var reused: Bool?

    package enum CodingKeys: String, CodingKey {
        case id, event, code, reused
        case buildSeconds = "build_s"
    }
}

/// What a warm job's run says besides the supervisor's usual record.
package struct WarmRun {
    package var run: SupervisedRun
    /// Seconds the job's pipeline took to build; 0 when the cached one was reused.
    package var pipelineBuildSeconds: Double?
    /// The job reused the loaded pipeline (nil: it never got to build one).
    package var pipelineReused: Bool?
    /// The runner was (re)started for this job.
    package var runnerStarted = false
}

/// One GPU slot's warm runner (`runner/warm_runner.py`): a long-lived Python process that runs
/// Wan2.2's own generate.py for every job with its pipelines kept loaded. Jobs go to it as JSON
/// lines on its fd 3; it reports on fd 4; its stdout/stderr are the generator's log, read as a
/// cold run's are. A stop (cancel, timeout, ownership lost, shutdown) is SIGUSR1: the runner
/// abandons the job at the next Python step and reports `stopped`, and the result waits for
/// that report. A runner that has not reported within `supervisor.grace_s` is killed with its
/// whole process tree (SIGKILL to its group and to every process carrying its marker), and
/// the next job starts a new one. A crash fails the job (`signal` / `exit_code`).
///
/// Used by the slot's job thread only (one job at a time), and by the owner loop's
/// ``shutdown()`` once no job runs.
package final class WarmRunner: @unchecked Sendable {  // one user at a time, as above
    package struct Options: Sendable {
        package var python: String
        package var script: String
        package var repo: String
        package var idleSeconds: Double
        package var maxJobs: Int
        package var maxResidentBytes: Int
        package var environment: [String: String]

        package init(
            python: String, script: String, repo: String, idleSeconds: Double, maxJobs: Int, maxResidentBytes: Int, environment: [String: String]
        ) {
            self.python = python
            self.script = script
            self.repo = repo
            self.idleSeconds = idleSeconds
            self.maxJobs = maxJobs
            self.maxResidentBytes = maxResidentBytes
            self.environment = environment
        }
    }

    private struct Child {
        var pid: pid_t
        var pidDescriptor: Int32
        var output: Int32
        var errors: Int32
        var commands: Int32
        var reports: Int32
        var marker: String
        var jobs = 0
    }

    package let options: Options
    private var child: Child?
    private var reportBuffer: [UInt8] = []
    /// Runners started after the first one (crash, kill, recycling, idle exit).
    package private(set) var restarts = 0
    private var everStarted = false

    package init(options: Options) { self.options = options }

    /// Runs one job (generate.py's options) in the runner, starting one if needed.
    package func run(
        id: String, arguments: [String], supervisor: SupervisorOptions, control: JobControl,
        deadline: ContinuousClock.Instant?, onLine: (String) -> Void
    ) -> WarmRun {
        var warm = WarmRun(run: SupervisedRun())
        reapIfGone()
        if child == nil {
            do {
                child = try spawn()
                warm.runnerStarted = true
                if everStarted { restarts += 1 }
                everStarted = true
            } catch {
                warm.run.spawnError = error.message
                warm.run.endedAt = Date()
                return warm
            }
        }
        guard var current = child else { return warm }
        warm.run.pid = current.pid
        warm.run.startedAt = Date()
        // A job the runner cannot be told about fails like a runner that cannot start.
        guard let command = try? ProtocolCoding.encode(WarmCommand(id: id, argv: arguments)) else {
            warm.run.spawnError = "cannot encode the job for the warm runner"
            return warm
        }
        // A runner that died meanwhile shows as an exit below (SIGPIPE is ignored).
        _ = (command + [0x0A]).withUnsafeBytes { write(current.commands, $0.baseAddress, $0.count) }
        var tail = LogTail(maxLines: supervisor.logTailLines)
        var report: WarmReport?
        var watch = ChildWatch(
            pid: current.pid, pidDescriptor: current.pidDescriptor, marker: current.marker, outputs: [current.output, current.errors],
            closeAtEndOfFile: false)
        let end = watch.watch(
            control: control, deadline: deadline, options: supervisor, run: &warm.run, tail: &tail, onLine: onLine,
            askToStop: { _ = kill(current.pid, SIGUSR1) }, extra: current.reports,
            onExtra: {
                report = readReports(current.reports).last { $0.id == id } ?? report
                return report != nil
            })
        if let report {
            warm.pipelineBuildSeconds = report.buildSeconds
            warm.pipelineReused = report.reused
            // Stopped: the stop request says how it ended.
            warm.run.termination = .exited(report.event == .done ? Int32(clamping: report.code ?? 1) : 0)
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        ChildWatch.drain(current.output, into: &tail, buffer: &buffer, onLine: onLine)
        ChildWatch.drain(current.errors, into: &tail, buffer: &buffer, onLine: onLine)
        tail.flush(onLine: onLine)
        warm.run.logTail = tail.lines
        warm.run.endedAt = Date()
        if end != .finished {
            // The runner died with the job (a crash, an OOM kill, or our SIGKILL): the job's
            // result says how; the next job gets a fresh runner.
            if report == nil, case .exited(let status) = end { warm.run.termination = Termination(waitStatus: status) }
            if end == .lost { warm.run.spawnError = "the warm runner's exit status was lost (reaped by another thread)" }
            ProcessTree.killAll(environment: current.marker, scope: .descendants)
            close(current)
            child = nil
            return warm
        }
        current.jobs += 1
        child = current
        // A CUDA error poisons the process's context (../shared/wan22-facts.md): every later
        // job in this runner would fail too. Only a new process helps.
        let poisoned = warm.run.termination != .exited(0) && GeneratorFailure.losesCUDAContext(logTail: warm.run.logTail, echoed: arguments)
        if poisoned || current.jobs >= options.maxJobs
            || (options.maxResidentBytes > 0 && residentBytes(of: current) > options.maxResidentBytes)
        {
            shutdown(grace: supervisor.grace)
        }
        return warm
    }

    /// Ends the runner: closes its job pipe (it exits at once when idle), then kills its tree
    /// if it has not gone within `grace`.
    package func shutdown(grace: Duration = .seconds(5)) {
        guard let current = child else { return }
        Glibc.close(current.commands)
        let end = ContinuousClock.now + grace
        var status: Int32 = 0
        while waitpid(current.pid, &status, WNOHANG) != current.pid {
            if ContinuousClock.now >= end {
                _ = kill(-current.pid, SIGKILL)
                ProcessTree.signal(environment: current.marker, SIGKILL, scope: .descendants)
                _ = waitpid(current.pid, &status, 0)
                break
            }
            var fd = pollfd(fd: current.pidDescriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, 50)
        }
        ProcessTree.killAll(environment: current.marker, scope: .descendants)
        close(current, commandsClosed: true)
        child = nil
    }

    /// `warm_runner.py` next to the running executable (where scripts/build-release.sh puts it).
    package static var defaultScript: String { SessionSpawn.besideExecutable("warm_runner.py") }

    /// The runner's pid while it lives (tests, metrics).
    package var pid: pid_t? { child?.pid }

    /// A runner that exited while idle (`wan.warm_idle_s`) or died between jobs is reaped here.
    private func reapIfGone() {
        guard let current = child else { return }
        var status: Int32 = 0
        guard waitpid(current.pid, &status, WNOHANG) == current.pid else { return }
        ProcessTree.killAll(environment: current.marker, scope: .descendants)
        close(current)
        child = nil
    }

    private func spawn() throws(GenWorkerError) -> Child {
        guard let python = Supervisor.resolve(options.python, path: options.environment["PATH"]) else {
            throw GenWorkerError(.helperUnavailable, "\(options.python): not found")
        }
        guard access(options.script, R_OK) == 0 else {
            throw GenWorkerError(.helperUnavailable, "the warm runner \(options.script) is not readable (wan.warm_runner)")
        }
        var output: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]
        var commands: [Int32] = [-1, -1]
        var reports: [Int32] = [-1, -1]
        guard pipe(&output) == 0, pipe(&errors) == 0, pipe(&commands) == 0, pipe(&reports) == 0 else {
            throw GenWorkerError(.helperUnavailable, "pipe() failed: errno \(errno)")
        }
        for fd in output + errors + commands + reports { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        for fd in [output[0], errors[0], reports[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        // The worker must not die of a write to a runner that just died.
        signal(SIGPIPE, SIG_IGN)
        let started = SessionSpawn.start(
            executable: python, arguments: [python, options.script, options.repo, String(options.idleSeconds)],
            environment: options.environment, workingDirectory: options.repo,
            files: [(output[1], 1), (errors[1], 2), (commands[0], 3), (reports[1], 4)], markerPrefix: "warm-")
        for fd in [output[1], errors[1], commands[0], reports[1]] { Glibc.close(fd) }
        let child: SessionSpawn.Started
        switch started {
        case .success(let started): child = started
        case .failure(let error):
            for fd in [output[0], errors[0], commands[1], reports[0]] { Glibc.close(fd) }
            throw GenWorkerError(.helperUnavailable, "cannot start the warm runner: \(error.text)")
        }
        let pid = child.pid
        let marker = child.marker
        reportBuffer.removeAll()
        return Child(
            pid: pid, pidDescriptor: gw_process_pidfd_open(pid), output: output[0], errors: errors[0],
            commands: commands[1], reports: reports[0], marker: marker)
    }

    private func close(_ child: Child, commandsClosed: Bool = false) {
        for fd in [child.output, child.errors, child.reports, child.pidDescriptor] where fd >= 0 { Glibc.close(fd) }
        if !commandsClosed { Glibc.close(child.commands) }
        ProcessTree.leaders.withLock { _ = $0.remove(child.pid) }
    }

    /// Complete JSON lines from the report pipe.
    private func readReports(_ fd: Int32) -> [WarmReport] {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            reportBuffer += chunk[0..<n]
        }
        var reports: [WarmReport] = []
        while let newline = reportBuffer.firstIndex(of: 0x0A) {
            let line = Array(reportBuffer[..<newline])
            reportBuffer.removeSubrange(...newline)
            if let report = try? ProtocolCoding.decode(WarmReport.self, from: line) { reports.append(report) }
        }
        return reports
    }

    /// Resident memory of the runner and everything it started.
    private func residentBytes(of child: Child) -> Int {
        let pids = [child.pid] + ProcessTree.processes(withEnvironment: child.marker, scope: .descendants).filter { $0 != child.pid }
        return pids.reduce(0) { total, pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
            else { return total }
            return total + kb * 1024
        }
    }
}
