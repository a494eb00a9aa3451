import Foundation
import GenWorkerCore

#if canImport(Glibc)
    import Glibc
#endif

/// One live worker per identity (`worker.name` on `topology.jobs_queue`) on a machine: the
/// live worker holds an exclusive `flock` on `worker.lock_dir/genworker-<identity>.lock`,
/// which the kernel releases when the worker dies, however it dies. A second worker of the
/// same identity refuses to start, so it never kills the first one's generators (they carry
/// the same owner marker); and the clean-up of an earlier life's leftovers runs only once
/// the lock is ours, that is, when that earlier life is provably over.
package final class WorkerIdentityLock {
    package let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    package static func acquire(configuration: WorkerConfiguration) throws(GenWorkerError) -> WorkerIdentityLock {
        let directory = configuration.worker.lockDir
        if !FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let path = (directory as NSString).appendingPathComponent("genworker-\(configuration.ownerToken).lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw GenWorkerError(.configuration, "worker.lock_dir: cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw GenWorkerError(
                .identityInUse,
                "another live worker is '\(configuration.worker.name)' on \(configuration.topology.jobsQueue) on this machine"
                    + (holder.map { $0.isEmpty ? "" : " (pid \($0))" } ?? "") + "; it holds \(path)",
                hint: "give each worker its own worker.name (GENWORKER_WORKER_NAME), e.g. one per GPU")
        }
        // For people and for the message above: who holds it.
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return WorkerIdentityLock(path: path, descriptor: fd)
    }

    /// Gives the identity up (the kernel does the same if the process dies).
    package func release() {
        _ = ftruncate(descriptor, 0)
        close(descriptor)
    }
}
