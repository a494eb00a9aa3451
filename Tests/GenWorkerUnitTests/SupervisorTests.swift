import Foundation
import Synchronization
import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// The supervisor against plain child processes (sh, sleep): no broker, no generator.
final class SupervisorTests: XCTestCase {
    func options(grace: Duration = .seconds(1)) -> SupervisorOptions {
        SupervisorOptions(grace: grace, pollInterval: .milliseconds(100), logTailLines: 5)
    }

    func sh(_ script: String) -> ProcessSpec {
        ProcessSpec(executable: "/bin/sh", arguments: ["-c", script], environment: ["PATH": "/usr/bin:/bin"])
    }

    func testExitCodesAndSignalsAreResults() {
        let ok = Supervisor.run(sh("echo out; echo err >&2"), options: options(), control: JobControl(), deadline: nil)
        XCTAssertEqual(ok.termination, .exited(0))
        XCTAssertEqual(Set(ok.logTail), ["out", "err"])
        XCTAssertEqual(Supervisor.run(sh("exit 3"), options: options(), control: JobControl(), deadline: nil).termination, .exited(3))
        XCTAssertEqual(Supervisor.run(sh("kill -SEGV $$"), options: options(), control: JobControl(), deadline: nil).termination, .signaled(SIGSEGV))
        let missing = Supervisor.run(
            ProcessSpec(executable: "no-such-program-x", arguments: [], environment: ["PATH": "/bin"]),
            options: options(), control: JobControl(), deadline: nil)
        XCTAssertNil(missing.termination)
        XCTAssertEqual(missing.spawnError, "no-such-program-x: not found")
    }

    func testArgumentsArriveByteForByteInTheWorkingDirectory() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sup-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tricky = "a b; $(rm -rf /) `x` \"q\" 'r' \\ * ~"
        var spec = ProcessSpec(executable: "/bin/sh", arguments: ["-c", "pwd; printf '%s\\n' \"$1\"", "sh", tricky], environment: [:])
        spec.workingDirectory = dir.path
        let run = Supervisor.run(spec, options: options(), control: JobControl(), deadline: nil)
        XCTAssertEqual(run.logTail, [dir.resolvingSymlinksInPath().path, tricky])
    }

    /// Several slots run many short children while the orphan reaper sweeps beside them (as
    /// every finished job makes it do): no supervisor may lose its child's exit to the reaper.
    /// Before the reaper held the leaders' lock through its sweep, a child spawned and exited
    /// between its snapshot and its `waitpid` was reaped by the wrong thread, and its
    /// supervisor spun on a readable pidfd for ever.
    func testShortChildrenOnSeveralSlotsNeverLoseTheirExitToTheReaper() {
        let slots = 4
        let runsPerSlot = 150
        let sweeping = Atomic<Bool>(true)
        let reaper = Thread { while sweeping.load(ordering: .relaxed) { ProcessTree.reapOrphans() } }
        reaper.start()
        let group = DispatchGroup()
        let wrong = Mutex<[String]>([])
        let options = options()
        for slot in 0..<slots {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for n in 0..<runsPerSlot {
                    let run = Supervisor.run(
                        ProcessSpec(executable: "/bin/sh", arguments: ["-c", "exit \(n % 7)"], environment: [:]), options: options,
                        control: JobControl(), deadline: nil)
                    if run.termination != .exited(Int32(n % 7)) {
                        wrong.withLock { $0.append("slot \(slot) run \(n): \(String(describing: run.termination)) \(run.spawnError ?? "")") }
                    }
                }
            }
        }
        let finished = group.wait(timeout: .now() + 60)
        sweeping.store(false, ordering: .relaxed)
        XCTAssertEqual(finished, .success, "a supervisor never saw its child's exit (reaped by the orphan sweep)")
        XCTAssertEqual(wrong.withLock { $0 }, [], "every run reports its own child's exit code")
    }

    func testAStopRequestEndsTheWholeGroupAtOnce() {
        let control = JobControl()
        let started = ContinuousClock.now
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { control.requestStop(.cancelled) }
        let run = Supervisor.run(sh("sleep 30 & sleep 30; wait"), options: options(), control: control, deadline: nil)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertEqual(run.stopRequest, .cancelled)
        XCTAssertFalse(run.killed, "sh dies of SIGTERM within the grace")
        XCTAssertEqual(run.termination, .signaled(SIGTERM))
        XCTAssertNotNil(control.stopRequestedAt)
        XCTAssertFalse(control.requestStop(.ownershipLost), "the first request wins")
        XCTAssertEqual(control.stopRequest, .cancelled)
    }

    func testAChildIgnoringSIGTERMIsKilledAfterTheGrace() {
        let control = JobControl()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { control.requestStop(.cancelled) }
        let started = ContinuousClock.now
        let run = Supervisor.run(
            sh("trap '' TERM; while :; do sleep 0.05; done"), options: options(grace: .milliseconds(500)),
            control: control, deadline: nil)
        XCTAssertTrue(run.killed)
        XCTAssertEqual(run.termination, .signaled(SIGKILL))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(750))
    }

    func testTheDeadlineStopsTheRun() {
        let run = Supervisor.run(sh("sleep 30"), options: options(), control: JobControl(), deadline: .now + .milliseconds(300))
        XCTAssertTrue(run.timedOut)
        XCTAssertNil(run.stopRequest)
    }

    func testAGrandchildInItsOwnSessionDoesNotOutliveTheRun() throws {
        _ = ProcessTree.becomeSubreaper()
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("gc-\(UUID()).pid").path
        defer { unlink(pidFile) }
        // setsid: out of the group's reach; only the run's marker finds it.
        let run = Supervisor.run(
            sh("setsid sh -c 'trap \"\" TERM; echo $$ > \(pidFile); sleep 30' & sleep 0.3; exit 0"),
            options: options(), control: JobControl(), deadline: nil)
        XCTAssertEqual(run.termination, .exited(0))
        let pid = try XCTUnwrap(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertFalse(ProcessTree.isAlive(pid), "the stray grandchild must be gone when the run ends")
    }

    func testKillAllWaitsForTheProcessesToGo() throws {
        _ = ProcessTree.becomeSubreaper()
        let marker = "GENWORKER_RUN=test-\(UUID())"
        var pids: [pid_t] = []
        for _ in 0..<3 {
            var pid: pid_t = 0
            let argv = [strdup("/bin/sleep"), strdup("30"), nil]
            let envp = [strdup(marker), nil]
            defer { (argv + envp).forEach { free($0) } }
            XCTAssertEqual(posix_spawn(&pid, "/bin/sleep", nil, nil, argv, envp), 0)
            pids.append(pid)
        }
        // posix_spawn returns before the child has exec'd (until then /proc shows the parent's
        // environment): wait until all three carry the marker.
        let visible = ContinuousClock.now + .seconds(5)
        while Set(ProcessTree.processes(withEnvironment: marker, scope: .descendants)) != Set(pids), ContinuousClock.now < visible {
            Thread.sleep(forTimeInterval: 0.005)
        }
        XCTAssertEqual(Set(ProcessTree.processes(withEnvironment: marker, scope: .descendants)), Set(pids))
        let started = ContinuousClock.now
        XCTAssertTrue(ProcessTree.killAll(environment: marker, scope: .descendants))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
        for pid in pids {
            var status: Int32 = 0
            _ = waitpid(pid, &status, WNOHANG)
            XCTAssertFalse(ProcessTree.isAlive(pid))
        }
        XCTAssertEqual(ProcessTree.processes(withEnvironment: marker, scope: .descendants), [])
    }

    func testWaitStatusesDecodeThroughTheCMacros() {
        XCTAssertEqual(Termination(waitStatus: 3 << 8), .exited(3))
        XCTAssertEqual(Termination(waitStatus: 0), .exited(0))
        XCTAssertEqual(Termination(waitStatus: SIGKILL), .signaled(SIGKILL))
        XCTAssertEqual(Termination(waitStatus: SIGSEGV | 0x80), .signaled(SIGSEGV), "a core dump is still the signal")
    }
}

/// How a step's end becomes the job's outcome.
final class StepOutcomeTests: XCTestCase {
    func run(
        _ termination: Termination?, stop: StopRequest? = nil, timedOut: Bool = false, killed: Bool = false,
        spawnError: String? = nil
    ) -> SupervisedRun {
        var run = SupervisedRun()
        run.termination = termination
        run.stopRequest = stop
        run.timedOut = timedOut
        run.killed = killed
        run.spawnError = spawnError
        return run
    }

    func classify(_ run: SupervisedRun, shuttingDown: Bool = false, missing: String? = nil, prefix: String = "") -> StepOutcome {
        StepOutcome.classify(run, prefix: prefix, timeout: .seconds(60), grace: .seconds(30), isShuttingDown: shuttingDown) { missing }
    }

    func testEveryWayAStepEnds() {
        XCTAssertEqual(classify(run(.exited(0))), .nextStep)
        XCTAssertEqual(
            classify(run(.exited(0)), missing: "the generator exited 0 but wrote no video"),
            .ended(.failed, .noOutput, "the generator exited 0 but wrote no video"))
        XCTAssertEqual(classify(run(.exited(2)), prefix: "generate: "), .ended(.failed, .exitCode, "generate: exited with code 2"))
        XCTAssertEqual(classify(run(.signaled(SIGSEGV))), .ended(.failed, .signal, "killed by signal 11 (Segmentation fault)"))
        XCTAssertEqual(classify(run(nil, spawnError: "python3: not found")), .ended(.failed, .spawnFailed, "python3: not found"))
        XCTAssertEqual(classify(run(nil)), .ended(.failed, .spawnFailed, "did not run"))
        XCTAssertEqual(classify(run(.signaled(SIGTERM), timedOut: true)), .ended(.failed, .timeout, "timed out after 60.0 seconds"))
    }

    func testStopsWinOverHowTheProcessDied() {
        XCTAssertEqual(classify(run(.signaled(SIGTERM), stop: .cancelled)), .ended(.cancelled, .cancelledWhileRunning, "cancelled while running"))
        XCTAssertEqual(
            classify(run(.signaled(SIGKILL), stop: .cancelled, killed: true)),
            .ended(.cancelled, .cancelledWhileRunning, "cancelled; the process ignored SIGTERM and was killed after 30.0 seconds"))
        XCTAssertEqual(classify(run(.signaled(SIGTERM), stop: .ownershipLost)), .abandoned(nil))
        XCTAssertEqual(classify(run(.exited(0), stop: .shutdown)), .abandoned(nil))
    }

    func testSIGTERMFromOutsideDuringShutdownGivesTheJobBack() {
        XCTAssertEqual(classify(run(.signaled(SIGTERM)), shuttingDown: true), .abandoned("the generator got SIGTERM from outside during shutdown"))
        XCTAssertEqual(classify(run(.signaled(SIGTERM)), shuttingDown: false), .ended(.failed, .signal, "killed by signal 15 (Terminated)"))
    }

    /// torchrun's ranks got SIGTERM from outside during a shutdown: torchrun exits 1 and the
    /// dying ranks print NCCL errors. Not a machine's fault (no retry spent, no fault counted).
    func testAMachineFaultDuringShutdownGivesTheJobBackUncounted() {
        var dying = run(.exited(1))
        dying.logTail = ["torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970", "SignalException: Process 1 got signal: 15"]
        XCTAssertEqual(classify(dying, shuttingDown: true), .abandoned("the generator failed during shutdown (gpu_error): given back"))
        guard case .ended(.failed, .gpuError, _) = classify(dying, shuttingDown: false) else { return XCTFail("not a gpu_error outside a shutdown") }
    }
}
