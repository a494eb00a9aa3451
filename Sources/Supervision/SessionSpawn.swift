import CProcessShims
import Foundation
import GenWorkerCore

#if canImport(Glibc)
    import Glibc
#endif

/// How the supervisor and the warm runner start a child: never through a shell, stdin from
/// /dev/null, the given descriptors moved into place, in a new session and process group, with
/// default signal dispositions and an empty mask, and a run marker (`GENWORKER_RUN=<uuid>`) in
/// its environment that its descendants inherit, so the whole tree can be found through /proc.
package enum SessionSpawn {
    package struct Started {
        package var pid: pid_t
        /// `GENWORKER_RUN=<uuid>`, as the child's environment holds it.
        package var marker: String
    }

    /// Starts `executable` (already resolved) with `arguments` (argv[0] included). `files` maps
    /// our descriptors to the child's (e.g. a pipe's write end to 1). The pid is registered in
    /// ``ProcessTree/leaders`` (the caller waits for it and removes it), under the lock, so the
    /// orphan reaper never reaps it. Returns the errno of a failed spawn.
    package static func start(
        executable: String, arguments: [String], environment: [String: String], workingDirectory: String?,
        files: [(ours: Int32, theirs: Int32)], markerPrefix: String = ""
    ) -> Result<Started, Errno> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for file in files { posix_spawn_file_actions_adddup2(&actions, file.ours, file.theirs) }
        if let workingDirectory { gw_process_spawn_addchdir(&actions, workingDirectory) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        var empty = sigset_t()
        sigfillset(&defaults)
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | gw_process_spawn_setsid_flag())

        let marker = "GENWORKER_RUN=\(markerPrefix)\(UUID().uuidString)"
        var environment = environment
        environment["GENWORKER_RUN"] = String(marker.dropFirst("GENWORKER_RUN=".count))
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let status = ProcessTree.leaders.withLock { leaders in
            let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            if status == 0 { leaders.insert(pid) }
            return status
        }
        return status == 0 ? .success(Started(pid: pid, marker: marker)) : .failure(Errno(status))
    }

    /// A helper program shipped next to the running executable (the CLI, or the test bundle).
    package static func besideExecutable(_ name: String) -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((executable as NSString).deletingLastPathComponent as NSString).appendingPathComponent(name)
    }

    package struct Errno: Error {
        package let code: Int32
        package init(_ code: Int32) { self.code = code }
        package var text: String { String(cString: strerror(code)) }
    }
}
