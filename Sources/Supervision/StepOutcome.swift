import Foundation
import GenWorkerCore

#if canImport(Glibc)
    import Glibc
#endif

/// How one step of a job ended, from what the supervisor saw: the next step runs (after
/// the last one: the job completed), the job
/// ends with a result, or the run is abandoned without one (the ledger gave the job to
/// another attempt, or the worker gives it back on shutdown). Pure; `missingOutput` is asked only after exit 0.
package enum StepOutcome: Equatable {
    case nextStep
    case ended(JobEventKind, JobReason?, String)
    /// No result: the job runs again elsewhere. Carries a line for the log, if any.
    case abandoned(String?)

    /// `echoed`: the job's own texts (its prompt, …), which its log repeats and which must
    /// not name the failure (``GeneratorFailure``).
    package static func classify(
        _ run: SupervisedRun, prefix: String, timeout: Duration, grace: Duration, isShuttingDown: Bool, echoed: [String] = [],
        missingOutput: () -> String?
    ) -> StepOutcome {
        if let error = run.spawnError { return .ended(.failed, .spawnFailed, prefix + error) }
        switch run.stopRequest {
        case .cancelled?:
            return .ended(
                .cancelled, .cancelledWhileRunning,
                prefix + (run.killed ? "cancelled; the process ignored SIGTERM and was killed after \(grace)" : "cancelled while running"))
        case .ownershipLost?, .shutdown?:
            return .abandoned(nil)
        case nil:
            break
        }
        if run.timedOut { return .ended(.failed, .timeout, prefix + "timed out after \(timeout)") }
        // systemd's KillMode=control-group and container runtimes signal every process at
        // shutdown: a generator killed that way is not the job's fault; give the job back.
        if case .signaled(let signal)? = run.termination, [SIGTERM, SIGINT].contains(signal), isShuttingDown {
            return .abandoned("the generator got SIGTERM from outside during shutdown")
        }
        switch run.termination {
        case .exited(0)?:
            if let missing = missingOutput() { return .ended(.failed, .noOutput, prefix + missing) }
            return .nextStep
        case .exited(let code)?:
            let known = GeneratorFailure.classify(logTail: run.logTail, signal: nil, echoed: echoed)
            // torchrun exits 1, not by the signal, when its ranks got SIGTERM from outside, and
            // the dying ranks print NCCL errors: during a shutdown that is no machine's fault.
            if isShuttingDown, let known, known.reason.isMachineFault {
                return .abandoned("the generator failed during shutdown (\(known.reason.rawValue)): given back")
            }
            if let known {
                return .ended(.failed, known.reason, prefix + known.message + "; exited with code \(code)")
            }
            return .ended(.failed, .exitCode, prefix + "exited with code \(code)")
        case .signaled(let signal)?:
            if let known = GeneratorFailure.classify(logTail: run.logTail, signal: signal, echoed: echoed) {
                return .ended(.failed, known.reason, prefix + known.message)
            }
            return .ended(.failed, .signal, prefix + "killed by signal \(signal) (\(String(cString: strsignal(signal))))")
        case nil:
            return .ended(.failed, .spawnFailed, prefix + "did not run")
        }
    }
}
