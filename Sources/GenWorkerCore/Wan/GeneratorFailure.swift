import Foundation

/// What a failed generator's log tail says about why (../shared/wan22-facts.md "How it
/// fails"): a GPU out of memory (the job's size), a CUDA error (the machine's GPU), the
/// machine's environment, or the kernel's OOM killer. Pure: the supervisor's log tail and
/// signal in, a reason and a message a client can act on out; nil leaves `exit_code` /
/// `signal` as they are.
///
/// The tail also holds what the job said: Wan2.2 logs its prompt (`Input prompt: …`, in
/// `Generation job args: Namespace(…)`), and a prompt may hold newlines. A job must not be
/// able to name its own failure the machine's (and so quarantine a healthy worker): lines of
/// Wan2.2's echo are skipped, and the job's own texts (`echoed`) are cut out of every line
/// before it is read.
public enum GeneratorFailure {
    public static func classify(logTail: [String], signal: Int32?, echoed: [String] = []) -> (reason: JobReason, message: String)? {
        let lines = read(logTail, echoed: echoed)
        func last(_ needles: [String]) -> String? {
            lines.last { line in needles.contains { line.contains($0) } }.map { String($0.trimmingCharacters(in: .whitespaces).prefix(240)) }
        }
        // Out of memory first: it is the cause when other errors follow it (the other ranks'
        // NCCL errors once one rank ran out). The job's size, not the machine: a job sized near
        // the GPU's limit also fails in CUDA's own allocations (cuBLAS, cuDNN workspaces:
        // "CUDA error: out of memory"), and a job must not quarantine healthy machines. That
        // one loses the CUDA context: a warm runner is replaced (``losesCUDAContext``).
        if let line = last([
            "torch.OutOfMemoryError", "CUDA out of memory", "torch.cuda.OutOfMemoryError", "CUDA error: out of memory",
            "CUBLAS_STATUS_ALLOC_FAILED",
        ]) {
            return (
                .gpuOutOfMemory,
                "the GPU ran out of memory; it may succeed with offload_model: true, convert_model_dtype, t5_cpu, a smaller size or fewer frames, or on a larger GPU (\(line))"
            )
        }
        if let line = last(cudaErrors + ["NCCL error", "no CUDA-capable device", "CUDA driver version is insufficient", "Found no NVIDIA driver"]) {
            return (.gpuError, "a CUDA error: the GPU or its driver is in trouble, not the job (\(line))")
        }
        if let line = last(["ModuleNotFoundError", "FLASH_ATTN_2_AVAILABLE", "FlashAttention only supports", "ImportError:"]) {
            return (.environment, "the machine's Python environment is broken, not the job (\(line))")
        }
        // torchrun's agent names a rank the kernel killed; torchrun itself then exits 1.
        if signal == SIGKILL || last(["Signal 9 (SIGKILL) received by PID"]) != nil {
            return (.hostOutOfMemory, "killed by SIGKILL, which the worker did not send: most likely the kernel's OOM killer (host RAM ran out)")
        }
        return nil
    }

    /// Whether the failure left the process's CUDA context unusable (any CUDA error, CUDA's
    /// own out of memory included; not PyTorch's allocator running out): a warm runner must be
    /// replaced. The job's texts as in ``classify(logTail:signal:echoed:)``.
    public static func losesCUDAContext(logTail: [String], echoed: [String] = []) -> Bool {
        let lines = read(logTail, echoed: echoed)
        return lines.contains { line in cudaErrors.contains { line.contains($0) } }
    }

    /// What a CUDA runtime error prints: a `gpu_error`, and a lost context.
    private static let cudaErrors = ["CUDA error:", "illegal memory access", "CUBLAS_STATUS_", "CUDNN_STATUS_"]

    /// The tail's lines a failure may be read from: without Wan2.2's echo of the job, cut
    /// lines, and the job's own texts.
    private static func read(_ logTail: [String], echoed: [String]) -> [String] {
        let echoedLines = echoed.flatMap { $0.split(whereSeparator: \.isNewline) }.map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.count >= 10 }  // no needle is shorter; cutting "a" would blind every line
            .sorted { $0.count > $1.count }
        return logTail.compactMap { line in
            if line.contains("Input prompt:") || line.contains("Generation job args:") || line.contains("Extended prompt:") { return nil }
            // A line cut at LogTail's bound may hold a prefix of the job's text that no longer
            // matches it whole; an error line is never that long.
            if line.hasSuffix(" […]") { return nil }
            var read = line
            for text in echoedLines { read = read.replacingOccurrences(of: text, with: " ") }
            return read
        }
    }
}
