import Foundation

/// Which GPUs each slot of a worker gets: the machine's devices (`worker.gpus`, else the
/// worker's own `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`) cut into one block of
/// `wan.gpus_per_job` devices per slot, given to its generator as `CUDA_VISIBLE_DEVICES`. A
/// configuration that needs more devices than there are is refused at start. Pure: the
/// caller says what the environment and `nvidia-smi` said.
public struct GPUAssignment: Sendable, Equatable {
    /// Where the device list came from, for the log and the refusal.
    public enum Source: String, Sendable {
        case configured = "worker.gpus"
        case environment = "CUDA_VISIBLE_DEVICES"
        case nvidiaSMI = "nvidia-smi -L"
        /// Nothing said which devices there are: slot N is assumed to own devices N×per job on.
        case assumed = "assumed"
        /// No device list, one slot of one GPU: the generator's environment is left alone.
        case none = "none"
    }

    public let devices: [String]
    public let source: Source
    /// Each slot's `CUDA_VISIBLE_DEVICES` (nil: not set).
    public let slots: [String?]

    public static func plan(
        configured: [String], visible: String?, nvidiaSMIList: String?, slots: Int, perJob: Int
    ) throws(GenWorkerError) -> GPUAssignment {
        let need = slots * perJob
        let fromEnvironment = visible.map(Self.split) ?? []
        let fromSMI = nvidiaSMIList.map(Self.indices) ?? []
        let (devices, source): ([String], Source) =
            !configured.isEmpty
            ? (configured, .configured)
            : visible != nil ? (fromEnvironment, .environment) : !fromSMI.isEmpty ? (fromSMI, .nvidiaSMI) : ([], .none)
        if source == .none {
            guard need > 1 else { return GPUAssignment(devices: [], source: .none, slots: [nil]) }
            let assumed = (0..<need).map(String.init)
            return GPUAssignment(devices: assumed, source: .assumed, slots: blocks(assumed, slots: slots, perJob: perJob))
        }
        guard need <= devices.count else {
            throw GenWorkerError(
                .configuration,
                "worker.slots (\(slots)) × wan.gpus_per_job (\(perJob)) needs \(need) GPU(s); this machine has \(devices.count) (\(source.rawValue): \(devices.joined(separator: ",")))",
                hint: "fewer slots, fewer GPUs per job, or name the devices in worker.gpus")
        }
        return GPUAssignment(devices: devices, source: source, slots: blocks(devices, slots: slots, perJob: perJob))
    }

    private static func blocks(_ devices: [String], slots: Int, perJob: Int) -> [String?] {
        (0..<slots).map { slot in devices[slot * perJob..<(slot + 1) * perJob].joined(separator: ",") }
    }

    private static func split(_ list: String) -> [String] {
        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// `nvidia-smi -L`'s lines (`GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-…)`) as device indices.
    package static func indices(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("GPU "), let colon = line.firstIndex(of: ":") else { return nil }
            let index = line[line.index(line.startIndex, offsetBy: 4)..<colon]
            return Int(index).map(String.init)
        }
    }
}
