import Foundation
import GenWorkerCore
import Logging

/// The machine's GPUs as a worker finds them at start (``GPUAssignment``): `worker.gpus`, its
/// own `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L` (bounded: a broken driver can hang it).
enum GPUInventory {
    static func assignment(configuration: WorkerConfiguration, logger: Logger) throws(GenWorkerError) -> GPUAssignment {
        let visible = ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"]
        let smi = configuration.worker.gpus.isEmpty && visible == nil ? nvidiaSMI() : nil
        var list: String?
        var failed: String?
        switch smi {
        case .listed(let text)?: list = text
        case .failed(let why)?: failed = why
        case nil: break
        }
        let assignment = try GPUAssignment.plan(
            configured: configuration.worker.gpus, visible: visible, nvidiaSMIList: list, nvidiaSMIFailed: failed,
            slots: configuration.worker.slots, perJob: configuration.wan.gpusPerJob)
        switch assignment.source {
        case .none: break
        case .assumed:
            logger.warning(
                "no GPUs known (worker.gpus, CUDA_VISIBLE_DEVICES, nvidia-smi -L): assuming devices \(assignment.devices.joined(separator: ",")); slots get \(assignment.slots.map { $0 ?? "-" }.joined(separator: " | "))"
            )
        default:
            logger.info(
                "GPUs (\(assignment.source.rawValue)): \(assignment.devices.joined(separator: ",")); slots get \(assignment.slots.map { $0 ?? "-" }.joined(separator: " | "))"
            )
        }
        return assignment
    }

    private enum NvidiaSMI {
        case listed(String)
        case failed(String)
    }

    /// `nvidia-smi -L`'s output; nil when it is not on PATH; `failed` when it exits non-zero
    /// or takes over 10 s (a broken driver hangs it).
    private static func nvidiaSMI() -> NvidiaSMI? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/nvidia-smi" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-L"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return .failed("\(path) did not start: \(error)") }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            process.terminate()
            return .failed("nvidia-smi -L did not answer within 10 s")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let said = text.split(separator: "\n").first.map { ": \($0.prefix(200))" } ?? ""
            return .failed("nvidia-smi -L exited with \(process.terminationStatus)\(said)")
        }
        return .listed(text)
    }
}
