import CProcessShims
import Foundation
import GenWorkerCore
import WakePipe

#if canImport(Glibc)
    import Glibc
#endif

/// The one loop that watches a child, for the supervisor's cold runs and the warm runner's
/// jobs: it reads the child's output as it comes, and on a stop request or the deadline asks
/// the child to stop (`askToStop`: SIGTERM to the group for a cold run, SIGUSR1 for the warm
/// runner), then after the grace SIGKILLs the group and every process carrying the run's
/// marker. It waits in one `poll` on the output, the stop flag's wake pipe, the child's pidfd
/// and, for the warm runner, its report pipe.
package struct ChildWatch {
    /// How the watch ended.
    package enum End: Equatable {
        /// The child exited (its wait status).
        case exited(Int32)
        /// `onExtra` said the job is over while the child lives on (the warm runner's report).
        case finished
        /// The child's exit status was taken by another thread (nothing here should reap it):
        /// ending beats spinning on a pidfd that stays readable.
        case lost
    }

    package let pid: pid_t
    package let pidDescriptor: Int32
    /// The run's marker (``SessionSpawn``): descendants that left the group still carry it.
    package let marker: String
    /// The child's stdout and stderr (non-blocking).
    package var outputs: [Int32]
    /// Whether an output that reaches end-of-file is closed and no longer watched (a cold
    /// run's pipes), or kept (the warm runner's, which outlive the job).
    package var closeAtEndOfFile: Bool

    package init(pid: pid_t, pidDescriptor: Int32, marker: String, outputs: [Int32], closeAtEndOfFile: Bool) {
        self.pid = pid
        self.pidDescriptor = pidDescriptor
        self.marker = marker
        self.outputs = outputs
        self.closeAtEndOfFile = closeAtEndOfFile
    }

    /// Watches until the child exits, or `onExtra` (called when `extra` is readable) returns
    /// true. Records in `run` what stopped it: the stop request, the deadline, SIGKILL.
    package mutating func watch(
        control: JobControl, deadline: ContinuousClock.Instant?, options: SupervisorOptions, run: inout SupervisedRun,
        tail: inout LogTail, onLine: (String) -> Void, askToStop: () -> Void, extra: Int32 = -1, onExtra: () -> Bool = { false }
    ) -> End {
        let clock = ContinuousClock()
        var killAt: ContinuousClock.Instant?
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if killAt == nil {
                if let request = control.stopRequest {
                    run.stopRequest = request
                } else if let deadline, clock.now >= deadline {
                    run.timedOut = true
                }
                if run.stopRequest != nil || run.timedOut {
                    askToStop()
                    killAt = clock.now + options.grace
                }
            }
            if let killAt, clock.now >= killAt, !run.killed {
                // It did not stop within the grace: the whole tree goes.
                run.killed = true
                _ = kill(-pid, SIGKILL)
                ProcessTree.signal(environment: marker, SIGKILL, scope: .descendants)
            }
            var wait = options.pollInterval
            if let deadline, killAt == nil { wait = min(wait, max(deadline - clock.now, .zero)) }
            if let killAt, !run.killed { wait = min(wait, max(killAt - clock.now, .zero)) }
            var fds = (outputs + [control.wakeDescriptor, pidDescriptor, extra]).filter { $0 >= 0 }
                .map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), WakePipe.milliseconds(wait))
            var finished = false
            for entry in fds where entry.revents != 0 {
                if outputs.contains(entry.fd) {
                    if !Self.drain(entry.fd, into: &tail, buffer: &buffer, onLine: onLine), closeAtEndOfFile {
                        close(entry.fd)
                        outputs.removeAll { $0 == entry.fd }
                    }
                } else if entry.fd == control.wakeDescriptor {
                    control.drainWakeups()
                } else if entry.fd == extra, extra >= 0 {
                    finished = onExtra() || finished
                }
            }
            var status: Int32 = 0
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { return .exited(status) }
            if waited < 0 && errno == ECHILD { return .lost }
            if finished { return .finished }
        }
    }

    /// Reads what `fd` holds now into `tail`; false at end-of-file or on an error.
    @discardableResult
    package static func drain(_ fd: Int32, into tail: inout LogTail, buffer: inout [UInt8], onLine: (String) -> Void) -> Bool {
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.withUnsafeBytes { tail.append(UnsafeRawBufferPointer(rebasing: $0.prefix(n)), onLine: onLine) }
                continue
            }
            if n == 0 { return false }
            return errno == EAGAIN || errno == EINTR
        }
    }
}
