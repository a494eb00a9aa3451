import CProcessShims
import Foundation
import GenWorkerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The worker's `genworker-watchdog` process: it holds the read end of a pipe whose
/// write end only the worker has (close-on-exec, so no generator inherits it). When the
/// worker dies, even by SIGKILL, the kernel closes the pipe and the watchdog kills every
/// process marked with the worker's `GENWORKER_OWNER` token, within milliseconds.
/// The worker also arms a deadline (``arm(until:)``): the end of its runs' leases. A worker
/// frozen past it (SIGSTOP, a stalled machine) cannot stop its runs itself; the watchdog does.
package final class Watchdog: Sendable {
    package let pid: pid_t
    private let pipeWriteEnd: Int32

    /// Starts the watchdog found at `path`.
    package static func start(path: String, ownerToken: String) throws(GenWorkerError) -> Watchdog {
        guard access(path, X_OK) == 0 else { throw GenWorkerError(.helperUnavailable, "\(path) is not an executable") }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw GenWorkerError(.helperUnavailable, "pipe() failed: errno \(errno)") }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        // A session of its own: a stop of the worker's process group (a terminal's Ctrl-Z,
        // `kill -STOP -PGID`) must not freeze the one process that enforces the deadline.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, gw_process_spawn_setsid_flag())
        let argv = [strdup(path), strdup(ownerToken), nil]
        let envp = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(fds[0])
        guard status == 0 else {
            close(fds[1])
            throw GenWorkerError(.helperUnavailable, "cannot start \(path): \(String(cString: strerror(status)))")
        }
        return Watchdog(pid: pid, pipeWriteEnd: fds[1])
    }

    private init(pid: pid_t, pipeWriteEnd: Int32) {
        self.pid = pid
        self.pipeWriteEnd = pipeWriteEnd
    }

    /// Sets the deadline after which the watchdog kills every marked process (nil: none).
    /// Sent as 8 bytes of CLOCK_MONOTONIC milliseconds: one atomic pipe write.
    package func arm(until deadline: ContinuousClock.Instant?) {
        var value: UInt64 = 0
        if let deadline {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let remaining = deadline - ContinuousClock.now
            let ms =
                Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000 + remaining.components.seconds * 1000
                + remaining.components.attoseconds / 1_000_000_000_000_000
            value = UInt64(max(1, ms))
        }
        _ = withUnsafeBytes(of: value.littleEndian) { write(pipeWriteEnd, $0.baseAddress, 8) }
    }

    /// Ends the watchdog (it sweeps once more: nothing of ours should be left by then).
    package func stop() {
        close(pipeWriteEnd)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    /// `genworker-watchdog` next to the running executable (the CLI, or the test bundle).
    package static var defaultPath: String { SessionSpawn.besideExecutable("genworker-watchdog") }
}
