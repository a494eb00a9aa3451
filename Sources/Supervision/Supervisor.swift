import CProcessShims
import Foundation
import GenWorkerCore
import WakePipe

#if canImport(Glibc)
    import Glibc
#endif

/// How a child ended. An exit code is a result, not an error.
public enum Termination: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)

    /// From a `waitpid` status, through the C library's own macros.
    package init(waitStatus status: Int32) {
        self = gw_process_signaled(status) != 0 ? .signaled(gw_process_term_signal(status)) : .exited(gw_process_exit_status(status))
    }
}

/// Everything the supervisor saw of one run.
public struct SupervisedRun: Sendable {
    /// Nil when the program could not be started (see `spawnError`).
    public var termination: Termination?
    public var spawnError: String?
    /// Set when the run was asked to stop (cancel, ownership lost in the ledger, shutdown).
    public var stopRequest: StopRequest?
    public var timedOut = false
    /// True when the grace period ran out and SIGKILL was needed.
    public var killed = false
    public var pid: pid_t = 0
    public var startedAt = Date()
    public var endedAt = Date()
    public var logTail: [String] = []
}

/// Runs one child in its own session and process group, reads its output as it comes,
/// and stops the whole group on request or deadline: SIGTERM, a grace period, SIGKILL.
/// Blocking: call it on a thread of its own, never on the Swift concurrency pool.
public enum Supervisor {
    public static func run(
        _ spec: ProcessSpec, options: SupervisorOptions, control: JobControl,
        deadline: ContinuousClock.Instant?, onLine: (String) -> Void = { _ in }
    ) -> SupervisedRun {
        var result = SupervisedRun()
        let clock = ContinuousClock()
        guard let executable = resolve(spec.executable, path: spec.environment["PATH"]) else {
            result.spawnError = "\(spec.executable): not found"
            return result
        }
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            result.spawnError = "pipe() failed: errno \(errno)"
            return result
        }
        for fd in [outPipe[0], errPipe[0], outPipe[1], errPipe[1]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        for fd in [outPipe[0], errPipe[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }

        result.startedAt = Date()
        let started = SessionSpawn.start(
            executable: executable, arguments: [spec.executable] + spec.arguments, environment: spec.environment,
            workingDirectory: spec.workingDirectory, files: [(outPipe[1], 1), (errPipe[1], 2)])
        close(outPipe[1])
        close(errPipe[1])
        guard case .success(let child) = started else {
            close(outPipe[0])
            close(errPipe[0])
            if case .failure(let error) = started { result.spawnError = "cannot start \(executable): \(error.text)" }
            result.endedAt = Date()
            return result
        }
        let pid = child.pid
        let runMarker = child.marker
        defer { ProcessTree.leaders.withLock { _ = $0.remove(pid) } }
        result.pid = pid

        let pidDescriptor = gw_process_pidfd_open(pid)
        defer { if pidDescriptor >= 0 { close(pidDescriptor) } }
        var tail = LogTail(maxLines: options.logTailLines)
        var watch = ChildWatch(pid: pid, pidDescriptor: pidDescriptor, marker: runMarker, outputs: [outPipe[0], errPipe[0]], closeAtEndOfFile: true)
        let end = watch.watch(
            control: control, deadline: deadline, options: options, run: &result, tail: &tail, onLine: onLine,
            askToStop: {
                _ = kill(-pid, SIGTERM)
                ProcessTree.signal(environment: runMarker, SIGTERM, scope: .descendants)
            })
        var exitStatus: Int32?
        switch end {
        case .exited(let status): exitStatus = status
        case .lost: result.spawnError = "the generator's exit status was lost (reaped by another thread)"
        case .finished: break
        }
        // The leader is gone; whatever is left of its tree (its group, and descendants in
        // sessions of their own) is a stray holding resources: none may survive the job.
        _ = kill(-pid, SIGKILL)
        ProcessTree.killAll(environment: runMarker, scope: .descendants)
        // Read what is still buffered; stop at once when the pipes close, in 1 s at most.
        var open = watch.outputs
        var buffer = [UInt8](repeating: 0, count: 65536)
        let drainUntil = ContinuousClock.now + .seconds(1)
        while !open.isEmpty, ContinuousClock.now < drainUntil {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 100)
            for entry in fds where entry.revents != 0 && !ChildWatch.drain(entry.fd, into: &tail, buffer: &buffer, onLine: onLine) {
                close(entry.fd)
                open.removeAll { $0 == entry.fd }
            }
        }
        open.forEach { close($0) }
        tail.flush(onLine: onLine)
        result.logTail = tail.lines
        result.endedAt = Date()
        result.termination = exitStatus.map { Termination(waitStatus: $0) }
        return result
    }

    /// `name` itself when it has a slash, else the first executable match on `path`.
    package static func resolve(_ name: String, path: String?) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
