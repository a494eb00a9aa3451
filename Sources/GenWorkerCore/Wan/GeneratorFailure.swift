import Foundation

/// What a failed generator's log tail says about why (../shared/wan22-facts.md "Failure
/// messages"): a GPU out of memory (the job's size), a CUDA error (the machine's GPU), the
/// machine's environment, or the kernel's OOM killer. Pure: the supervisor's log tail and
/// signal in, a reason and a message a client can act on out; nil leaves `exit_code` /
/// `signal` as they are.
public enum GeneratorFailure {
    public static func classify(logTail: [String], signal: Int32?) -> (reason: JobReason, message: String)? {
        // The last matching line: the error that ended the process comes last.
        func last(_ needles: [String]) -> String? {
            logTail.last { line in needles.contains { line.contains($0) } }.map { String($0.trimmingCharacters(in: .whitespaces).prefix(240)) }
        }
        // A CUDA runtime error first: "CUDA error: out of memory" is one too, and poisons the context.
        if let line = last([
            "CUDA error:", "illegal memory access", "CUBLAS_STATUS_", "CUDNN_STATUS_", "NCCL error", "no CUDA-capable device",
            "CUDA driver version is insufficient", "Found no NVIDIA driver",
        ]) {
            return (.gpuError, "a CUDA error: the GPU or its driver is in trouble, not the job (\(line))")
        }
        if let line = last(["torch.OutOfMemoryError", "CUDA out of memory", "torch.cuda.OutOfMemoryError"]) {
            return (
                .gpuOutOfMemory,
                "the GPU ran out of memory; it may succeed with offload_model: true, convert_model_dtype, t5_cpu, a smaller size or fewer frames, or on a larger GPU (\(line))"
            )
        }
        if let line = last(["ModuleNotFoundError", "FLASH_ATTN_2_AVAILABLE", "FlashAttention only supports", "ImportError:"]) {
            return (.environment, "the machine's Python environment is broken, not the job (\(line))")
        }
        if signal == SIGKILL {
            return (.hostOutOfMemory, "killed by SIGKILL, which the worker did not send: most likely the kernel's OOM killer (host RAM ran out)")
        }
        return nil
    }
}
