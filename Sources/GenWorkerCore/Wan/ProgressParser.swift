/// Reads Wan2.2's progress from its output: tqdm bars (`\r`-separated on stderr, from every
/// rank, e.g. ` 45%|████▌     | 18/40 [07:02<08:36, 23.48s/it]`) and its log phases.
/// s2v and animate print one bar per clip: a bar that starts again counts as the next clip.
package struct ProgressParser {
    package private(set) var progress: JobProgress?
    private var phase: String?
    private var clip = 1

    package init() {}

    /// Feeds one line; returns true when it changed what is known.
    package mutating func consume(_ line: String) -> Bool {
        if let newPhase = Self.phase(of: line) {
            guard newPhase != phase else { return false }
            phase = newPhase
            progress?.phase = newPhase
            if progress == nil { progress = JobProgress(step: 0, total: 0, percent: 0, etaSeconds: nil, phase: newPhase, clip: nil) }
            return true
        }
        guard let bar = Self.bar(line) else { return false }
        if let last = progress, last.total == bar.total, bar.step < last.step { clip += 1 }
        let updated = JobProgress(
            step: bar.step, total: bar.total, percent: bar.percent, etaSeconds: bar.eta,
            phase: phase ?? "generating", clip: clip)
        guard updated != progress else { return false }
        progress = updated
        return true
    }

    package static func phase(of line: String) -> String? {
        if line.contains("INFO: Creating ") && line.contains("pipeline") { return "loading" }
        if line.contains("INFO: Generating video") || line.contains("INFO: Generating") { return "generating" }
        if line.contains("INFO: Saving generated video to") { return "saving" }
        if line.contains("INFO: Finished.") { return "finished" }
        return nil
    }

    /// `step/total`, percent and ETA of a tqdm line.
    package static func bar(_ line: String) -> (step: Int, total: Int, percent: Int, eta: Int?)? {
        guard let pipe = line.firstIndex(of: "|"), let percentSign = line[..<pipe].lastIndex(of: "%"),
            let percent = Int(line[..<percentSign].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let rest = line[line.index(after: pipe)...]
        guard let secondPipe = rest.firstIndex(of: "|") else { return nil }
        let counts = rest[rest.index(after: secondPipe)...].trimmingCharacters(in: .whitespaces)
        let fraction = counts.prefix { $0 != " " && $0 != "[" }
        let parts = fraction.split(separator: "/")
        guard parts.count == 2, let step = Int(parts[0]), let total = Int(parts[1]), total > 0 else { return nil }
        var eta: Int?
        if let lt = counts.firstIndex(of: "<"), let comma = counts[lt...].firstIndex(of: ",") {
            eta = seconds(String(counts[counts.index(after: lt)..<comma]))
        }
        return (step, total, percent, eta)
    }

    /// `MM:SS` or `H:MM:SS` in seconds; nil for `?`.
    package static func seconds(_ text: String) -> Int? {
        let parts = text.split(separator: ":").compactMap { Int($0) }
        guard !parts.isEmpty, parts.count == text.split(separator: ":").count else { return nil }
        return parts.reduce(0) { $0 * 60 + $1 }
    }
}
