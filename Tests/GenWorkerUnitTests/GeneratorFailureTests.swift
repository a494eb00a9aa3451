import XCTest

@testable import GenWorkerCore

/// Wan2.2's failure messages (../shared/wan22-facts.md) to reasons a client and an operator can act on.
final class GeneratorFailureTests: XCTestCase {
    func testEachKindOfFailureIsToldApartByItsLastWords() {
        let oom = GeneratorFailure.classify(
            logTail: [" 45%|████| 18/40", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."], signal: nil)
        XCTAssertEqual(oom?.reason, .gpuOutOfMemory)
        XCTAssertTrue(oom?.message.contains("offload_model: true") ?? false, oom?.message ?? "")
        // A CUDA runtime error, even one that says "out of memory", poisons the context: the machine's.
        let cuda = GeneratorFailure.classify(
            logTail: ["RuntimeError: CUDA error: out of memory", "CUDA kernel errors might be asynchronously reported"], signal: nil)
        XCTAssertEqual(cuda?.reason, .gpuError)
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
}
