import XCTest

@testable import GenWorkerCore

/// Wan2.2's failure messages (../shared/wan22-facts.md) to reasons a client and an operator can act on.
final class GeneratorFailureTests: XCTestCase {
    func testEachKindOfFailureIsToldApartByItsLastWords() {
        let oom = GeneratorFailure.classify(
            logTail: [" 45%|████| 18/40", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."], signal: nil)
        XCTAssertEqual(oom?.reason, .gpuOutOfMemory)
        XCTAssertTrue(oom?.message.contains("offload_model: true") ?? false, oom?.message ?? "")
        // CUDA's own "out of memory" (cuBLAS, cuDNN workspaces of a job near the GPU's limit) is
        // the job's size too: a job must not quarantine healthy machines. It loses the context
        // (testWhichFailuresLoseTheCUDAContext).
        let cuda = GeneratorFailure.classify(
            logTail: ["RuntimeError: CUDA error: out of memory", "CUDA kernel errors might be asynchronously reported"], signal: nil)
        XCTAssertEqual(cuda?.reason, .gpuOutOfMemory)
        XCTAssertEqual(
            GeneratorFailure.classify(logTail: ["RuntimeError: CUDA error: an illegal memory access was encountered"], signal: nil)?.reason,
            .gpuError)
        XCTAssertEqual(
            GeneratorFailure.classify(logTail: ["    assert FLASH_ATTN_2_AVAILABLE", "AssertionError"], signal: nil)?.reason, .environment)
        XCTAssertEqual(GeneratorFailure.classify(logTail: ["ModuleNotFoundError: No module named 'flash_attn'"], signal: nil)?.reason, .environment)
        XCTAssertEqual(GeneratorFailure.classify(logTail: ["Generating video ..."], signal: SIGKILL)?.reason, .hostOutOfMemory)
        XCTAssertNil(GeneratorFailure.classify(logTail: ["ValueError: bad size"], signal: nil))
        XCTAssertNil(GeneratorFailure.classify(logTail: [], signal: SIGSEGV))
        XCTAssertTrue(JobReason.gpuError.isMachineFault && JobReason.environment.isMachineFault)
        XCTAssertFalse(JobReason.gpuOutOfMemory.isMachineFault || JobReason.hostOutOfMemory.isMachineFault || JobReason.exitCode.isMachineFault)
    }

    /// One rank ran out of memory and the others then failed in NCCL: the cause is the memory.
    func testAnOutOfMemoryFollowedByOtherRanksNCCLErrorsIsTheJobsSize() {
        let tail = [
            "[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB.",
            "[rank1]: torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited",
        ]
        XCTAssertEqual(GeneratorFailure.classify(logTail: tail, signal: nil)?.reason, .gpuOutOfMemory)
        XCTAssertEqual(
            GeneratorFailure.classify(logTail: ["RuntimeError: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"], signal: nil)?
                .reason, .gpuOutOfMemory)
    }

    /// A job cannot make its own failure the machine's (and so quarantine a healthy worker)
    /// by writing a machine's error into its prompt, on one line or on lines of their own.
    func testAPromptThatQuotesAMachinesErrorDoesNotBlameTheMachine() {
        let prompt = "a cat\nRuntimeError: CUDA error: an illegal memory access was encountered\nModuleNotFoundError: No module named 'x'"
        let tail = [
            "[2025-08-01 10:00:00,000] INFO: Generation job args: Namespace(prompt=\"a cat\\nRuntimeError: CUDA error: ...\")",
            "[2025-08-01 10:00:00,001] INFO: Input prompt: a cat",
            "RuntimeError: CUDA error: an illegal memory access was encountered",
            "ModuleNotFoundError: No module named 'x'",
            "ValueError: the job's own failure",
        ]
        XCTAssertNil(GeneratorFailure.classify(logTail: tail, signal: nil, echoed: [prompt, "832*480"]))
        // Without the job's texts the same lines would have blamed the GPU: the test can fail.
        XCTAssertEqual(GeneratorFailure.classify(logTail: tail, signal: nil)?.reason, .gpuError)
        // A real error after the echo is still read.
        XCTAssertEqual(
            GeneratorFailure.classify(
                logTail: tail + ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."], signal: nil, echoed: [prompt])?.reason,
            .gpuOutOfMemory)
        XCTAssertEqual(
            GeneratorFailure.classify(
                logTail: ["[2025-08-01 10:00:00,001] INFO: Input prompt: RuntimeError: CUDA error: boom", "ValueError: bad"], signal: nil)?.reason,
            nil)
        // A short text cut out of every line would blind the reader: such texts are left alone.
        XCTAssertEqual(
            GeneratorFailure.classify(logTail: ["RuntimeError: CUDA error: an illegal memory access"], signal: nil, echoed: ["a", "an"])?
                .reason, .gpuError)
    }

    /// A prompt line longer than LogTail's bound is logged cut: it no longer matches the job's
    /// text whole, and must still not blame the machine.
    func testAPromptLongerThanALogLineCannotBlameTheMachine() {
        let forged = "CUDA error: boom " + String(repeating: "a", count: 3000)
        let cut = String(forged.utf8.prefix(2048))! + " […]"
        XCTAssertNil(
            GeneratorFailure.classify(logTail: ["[..] INFO: Input prompt: x", cut, "ValueError: bad"], signal: nil, echoed: ["x\n" + forged]))
    }

    /// What a warm runner must be replaced for: a CUDA error, CUDA's own out of memory; not
    /// PyTorch's allocator running out, after which the context is fine.
    func testWhichFailuresLoseTheCUDAContext() {
        XCTAssertTrue(GeneratorFailure.losesCUDAContext(logTail: ["RuntimeError: CUDA error: an illegal memory access was encountered"]))
        XCTAssertTrue(GeneratorFailure.losesCUDAContext(logTail: ["RuntimeError: CUDA error: out of memory"]))
        XCTAssertFalse(GeneratorFailure.losesCUDAContext(logTail: ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."]))
        XCTAssertFalse(
            GeneratorFailure.losesCUDAContext(logTail: ["RuntimeError: CUDA error: boom"], echoed: ["a prompt\nRuntimeError: CUDA error: boom"]))
        XCTAssertFalse(GeneratorFailure.losesCUDAContext(logTail: ["ValueError: bad"]))
    }

    /// torchrun exits 1 when the kernel killed one of its ranks; its agent names the SIGKILL.
    func testARankTheKernelKilledUnderTorchrunIsTheHostsMemory() {
        let tail = ["torch.distributed.elastic.multiprocessing.api: [WARNING] Signal 9 (SIGKILL) received by PID 4242"]
        XCTAssertEqual(GeneratorFailure.classify(logTail: tail, signal: nil)?.reason, .hostOutOfMemory)
    }
}
