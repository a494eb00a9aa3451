import Foundation

/// Which GPUs each slot of a worker gets: the machine's devices (`worker.gpus`, else the
/// worker's own `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`) cut into one block of
/// `wan.gpus_per_job` devices per slot, given to its generator as `CUDA_VISIBLE_DEVICES`. A
/// configuration that needs more devices than there are is refused at start, and so is a
/// list CUDA would read otherwise than it is written (a device twice: two slots on one GPU;
/// `-1`, where CUDA stops reading) and an `nvidia-smi` that is installed but fails or lists no
/// GPU (a broken driver: every job would fail). Pure: the caller says what the environment
/// and `nvidia-smi` said.
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

    /// `nvidiaSMIList`: what `nvidia-smi -L` printed when it ran and exited 0 (nil: not
    /// installed, or not asked); `nvidiaSMIFailed`: why it is installed but gave no list.
    public static func plan(
        configured: [String], visible: String?, nvidiaSMIList: String?, nvidiaSMIFailed: String? = nil, slots: Int, perJob: Int
    ) throws(GenWorkerError) -> GPUAssignment {
        let need = slots * perJob
        let fromEnvironment = visible.map(Self.split) ?? []
        let fromSMI = nvidiaSMIList.map(Self.indices) ?? []
        let (devices, source): ([String], Source) =
            !configured.isEmpty
            ? (configured.flatMap(Self.split), .configured)
            : visible != nil ? (fromEnvironment, .environment) : nvidiaSMIList != nil ? (fromSMI, .nvidiaSMI) : ([], .none)
        if source == .none, let failed = nvidiaSMIFailed {
            throw GenWorkerError(
                .configuration, "nvidia-smi is installed but gives no GPU list (\(failed)): the driver or a GPU is broken",
                hint: "fix the driver, or name the devices in worker.gpus (or CUDA_VISIBLE_DEVICES) to start anyway")
        }
        if source == .nvidiaSMI, devices.isEmpty {
            let said = nvidiaSMIList?.split(separator: "\n").first.map(String.init) ?? ""
            throw GenWorkerError(
                .configuration, "nvidia-smi -L lists no GPU (\(said.prefix(200))): the driver or a GPU is broken",
                hint: "fix the driver, or name the devices in worker.gpus (or CUDA_VISIBLE_DEVICES) to start anyway")
        }
        if let twice = devices.enumerated().first(where: { devices[..<$0.offset].contains($0.element) })?.element {
            throw GenWorkerError(
                .configuration, "GPU \(twice) is listed twice (\(source.rawValue): \(devices.joined(separator: ","))): two slots would share it",
                hint: "list each device once")
        }
        if let stop = devices.first(where: { Int($0).map { $0 < 0 } ?? false }) {
            throw GenWorkerError(
                .configuration,
                "\(source.rawValue) holds \(stop) (\(devices.joined(separator: ","))): CUDA stops reading the list there, so slots would get devices CUDA hides",
                hint: "list only the devices to use")
        }
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
