import AMQP
import ArgumentParser
import Foundation
import GenWorkerCore
import Synchronization

/// `90s`, `15m`, `2h`, `1d` (or plain seconds) as seconds.
func parseDuration(_ text: String) throws -> TimeInterval {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    var number = text
    var unit = 1.0
    if let last = text.last, let factor = units[last] {
        number = String(text.dropLast())
        unit = factor
    }
    guard let value = Double(number), value >= 0 else { throw ValidationError("'\(text)' is not a duration like 90s, 15m, 2h or 1d") }
    return value * unit
}

/// Columns padded to their widest cell.
enum Table {
    static func print(_ rows: [[String]]) {
        guard let header = rows.first else { return }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let line = row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            FileHandle.standardOutput.write(Data((line.trimmingCharacters(in: .whitespaces) + "\n").utf8))
        }
    }
}

/// Prints events: a live progress bar and one line per event on a terminal, JSON lines otherwise.
enum EventPrinter {
    /// Follows events; returns after the terminal event of `id` (never without an id). With
    /// `cancelOnInterrupt`, Ctrl-C asks whether to cancel the job instead of leaving.
    static func follow(connection: AMQPConnection, until id: String?, cancelExchange: String? = nil) throws {
        let terminal = isatty(1) == 1
        let interrupted = Interrupts(enabled: cancelExchange != nil && id != nil)
        while true {
            if interrupted.take(), let id, let cancelExchange {
                FileHandle.standardError.write(Data("\ncancel job \(id)? [y/N] ".utf8))
                if let answer = readLine(), answer.lowercased().hasPrefix("y") {
                    let channel = try connection.openChannel()
                    try channel.publish(
                        exchange: cancelExchange, routingKey: "", body: try ProtocolCoding.encode(CancelMessage(id: id)),
                        properties: .persistentJSON())
                    FileHandle.standardError.write(Data("cancel sent; waiting for the result\n".utf8))
                }
            }
            switch try connection.nextEvent(timeout: .milliseconds(200)) {
            case .delivery(let delivery)?:
                let event = try? JobEvent.decode(delivery.body)
                if terminal, let event {
                    write(human(event), replacingLine: event.event == .progress)
                } else {
                    FileHandle.standardOutput.write(Data(delivery.body + [UInt8(ascii: "\n")]))
                }
                if let id, let event, event.id == id, event.event.isTerminal {
                    if event.event != .completed { throw ExitCode(1) }
                    return
                }
            case .connectionClosed(let error)?:
                throw GenWorkerError(.brokerFailed, "the connection to the broker ended: \(error)")
            default:
                continue
            }
        }
    }

    static func write(_ text: String, replacingLine: Bool) {
        let line = replacingLine ? "\r\u{1B}[2K" + text : "\r\u{1B}[2K" + text + "\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    /// One line for a person: a bar for progress, a sentence for the rest.
    static func human(_ event: JobEvent) -> String {
        switch event.event {
        case .progress:
            let p = event.progress
            let percent = p?.percent ?? 0
            let filled = max(0, min(20, percent / 5))
            let bar = String(repeating: "█", count: filled) + String(repeating: " ", count: 20 - filled)
            let eta = p?.etaSeconds.map { " eta \($0 / 60)m\($0 % 60)s" } ?? ""
            let clip = (p?.clip ?? 1) > 1 ? " clip \(p!.clip!)" : ""
            return
                "\(event.id) [\(bar)] \(String(format: "%3d", percent))% \(p?.step ?? 0)/\(p?.total ?? 0)\(eta) \(event.step ?? "") \(p?.phase ?? "")\(clip)"
        case .started:
            return "\(event.id) started on \(event.worker)\(event.redelivered == true ? " (redelivered)" : "")"
        case .completed:
            return "\(event.id) completed in \(event.elapsedSeconds.map { String(format: "%.1f s", $0) } ?? "?"): \(event.output ?? "")"
        case .failed, .cancelled:
            return "\(event.id) \(event.event.rawValue) (\(event.reason?.rawValue ?? "")): \(event.message ?? "")"
        }
    }
}

/// Counts SIGINTs while enabled (instead of dying), so `submit --wait` can ask about a cancel.
final class Interrupts: @unchecked Sendable {  // source is set once in init
    private let pending = Mutex<Int>(0)
    private var source: DispatchSourceSignal?

    init(enabled: Bool) {
        guard enabled else { return }
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        self.source = source
        source.setEventHandler { [self] in pending.withLock { $0 += 1 } }
        source.resume()
    }

    func take() -> Bool {
        pending.withLock { count in
            defer { count = 0 }
            return count > 0
        }
    }
}
