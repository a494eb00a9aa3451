import CProcessShims
import Foundation
import GenWorkerCore
import Synchronization
import WakePipe

#if canImport(Glibc)
    import Glibc
#endif

/// Finds a job's processes through /proc rather than trusting process groups: torchrun
/// starts each worker in a session of its own, out of reach of the group's signals.
/// Every generator is started with a marker in its environment (`GENWORKER_RUN=<uuid>`,
/// `GENWORKER_OWNER=<worker>`), which its descendants inherit.
public enum ProcessTree {
    /// Where to look: every process on the host, or only this process's descendants (cheap:
    /// a job's processes are always ours, since we are their subreaper).
    public enum Scope: Sendable {
        case system
        case descendants
    }

    /// Live processes whose environment holds `marker` (`NAME=value`), this process excluded.
    public static func processes(withEnvironment marker: String, scope: Scope = .system) -> [pid_t] {
        let needle = Array(marker.utf8)
        let me = getpid()
        var found: [pid_t] = []
        let candidates = scope == .descendants ? (descendants(of: me) ?? allPIDs()) : allPIDs()
        for pid in candidates where pid != me {
            guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ"), !environ.isEmpty else { continue }
            let bytes = [UInt8](environ)
            var start = 0
            for (index, byte) in bytes.enumerated() where byte == 0 {
                if index - start == needle.count && Array(bytes[start..<index]) == needle {
                    if isAlive(pid) { found.append(pid) }
                    break
                }
                start = index + 1
            }
        }
        return found
    }

    /// Sends `signal` to every live process holding `marker`; returns how many there were.
    @discardableResult
    public static func signal(environment marker: String, _ signal: Int32, scope: Scope = .system) -> Int {
        let pids = processes(withEnvironment: marker, scope: scope)
        for pid in pids { _ = kill(pid, signal) }
        return pids.count
    }

    /// SIGKILLs every process holding `marker` until none is left (at most `timeout`), reaping
    /// the ones that were re-parented to us as subreaper. Returns whether none survived.
    @discardableResult
    public static func killAll(environment marker: String, scope: Scope = .system, timeout: Duration = .seconds(2)) -> Bool {
        let end = ContinuousClock.now + timeout
        while true {
            let pids = processes(withEnvironment: marker, scope: scope)
            // A pidfd per process, opened before the signal: poll() says when each is gone.
            let descriptors = pids.map { gw_process_pidfd_open($0) }
            defer { descriptors.filter { $0 >= 0 }.forEach { close($0) } }
            for pid in pids { _ = kill(pid, SIGKILL) }
            reapOrphans()
            if pids.isEmpty { return true }
            let now = ContinuousClock.now
            if now >= end { return false }
            var fds = descriptors.filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Every process gone (or none could be watched): look again at once, else after
            // the wait. A SIGKILLed process leaves within milliseconds.
            if fds.count == pids.count {
                var waited = 0
                while waited < fds.count, ContinuousClock.now < end {
                    let ready = poll(&fds, nfds_t(fds.count), WakePipe.milliseconds(end - ContinuousClock.now))
                    waited = fds.filter { $0.revents != 0 }.count
                    if ready <= 0 { break }
                }
            } else {
                var none = pollfd(fd: -1, events: 0, revents: 0)
                _ = poll(&none, 1, 10)  // no pidfd on this kernel: a short pause, as before
            }
        }
    }

    /// Gives the heap's free pages back to the system (glibc's `malloc_trim`): after a burst of
    /// allocations (the ledger catch-up decodes the whole window) the freed memory otherwise
    /// stays resident.
    package static func releaseFreeHeap() { gw_process_release_free_heap() }

    /// Becomes the child subreaper: orphaned descendants are re-parented to this process
    /// instead of init, so they stay visible and reapable.
    public static func becomeSubreaper() -> Bool { gw_process_set_child_subreaper() == 0 }

    /// Pids a supervisor is waiting for itself; ``reapOrphans()`` leaves them alone.
    package static let leaders = Mutex<Set<pid_t>>([])

    /// Reaps zombies re-parented to us (we are the subreaper) that no supervisor waits for.
    /// The whole sweep holds the leaders' lock, which every spawn takes too: a child spawned
    /// and exited during a sweep is either in the set or not yet born, never reaped here
    /// while its supervisor waits for it.
    public static func reapOrphans() {
        let me = getpid()
        Self.leaders.withLock { leaders in
            for pid in children(of: me) ?? allPIDs() where !leaders.contains(pid) {
                guard let stat = statFields(pid), stat.parent == me, stat.state == "Z" else { continue }
                var status: Int32 = 0
                _ = waitpid(pid, &status, WNOHANG)
            }
        }
    }

    /// Direct children of `pid` (all its threads), from /proc/PID/task/*/children; nil when the
    /// kernel does not offer that file.
    package static func children(of pid: pid_t) -> [pid_t]? {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        var result: [pid_t] = []
        for task in tasks {
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/task/\(task)/children") else {
                if task == String(pid) { return nil }
                continue
            }
            result += String(decoding: data, as: UTF8.self).split(separator: " ").compactMap {
                pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        return result
    }

    /// Every descendant of `pid`; nil when children cannot be listed.
    package static func descendants(of pid: pid_t) -> [pid_t]? {
        guard var frontier = children(of: pid) else { return nil }
        var result: [pid_t] = []
        while let next = frontier.popLast() {
            result.append(next)
            frontier += children(of: next) ?? []
        }
        return result
    }

    /// Whether `pid` exists and is not a zombie.
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = statFields(pid) else { return false }
        return stat.state != "Z" && stat.state != "X"
    }

    package static func statFields(_ pid: pid_t) -> (state: Character, parent: pid_t)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
            let text = String(data: data, encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 2, let state = rest[0].first, let parent = pid_t(rest[1]) else { return nil }
        return (state, parent)
    }

    package static func allPIDs() -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { pid_t($0) }
    }
}
