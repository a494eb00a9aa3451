import AMQP
import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore
import GenWorkerWeb
import Logging
import Supervision
import Synchronization

@main
struct GenworkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genworker",
        abstract: "Runs Wan2.2 video-generation jobs from RabbitMQ, and talks to the workers.",
        subcommands: [
            Run.self, Submit.self, Cancel.self, Watch.self, Status.self, Jobs.self, Workers.self, Dashboard.self, HashPassword.self, Declare.self,
        ])

    /// Usage errors (bad arguments) print the usage and exit 64; a runtime failure (a
    /// broker that is down, a port already taken, a bad config) prints one line saying what
    /// and what to try, and exits with its own code (`sysexits.h`), never with the usage.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as GenWorkerError {
            FileHandle.standardError.write(Data("genworker: \(error)\n".utf8))
            Foundation.exit(error.code.exitCode)
        } catch let error as AMQPError {
            // A broker failure after connecting (a closed channel, a lost connection).
            FileHandle.standardError.write(Data("genworker: the broker failed the request: \(error)\n".utf8))
            Foundation.exit(69)
        } catch {
            exit(withError: error)
        }
    }
}

extension GenWorkerError.Code {
    /// sysexits.h: EX_CONFIG 78, EX_UNAVAILABLE 69, EX_NOPERM 77, EX_OSERR 71, EX_DATAERR 65, EX_SOFTWARE 70, EX_TEMPFAIL 75.
    var exitCode: Int32 {
        switch self {
        case .configuration: 78
        case .brokerUnreachable: 69
        case .brokerRefused: 77
        case .brokerFailed: 69
        case .listenFailed: 71
        case .encoding: 65
        case .helperUnavailable: 70
        case .identityInUse: 75
        case .outputUnavailable: 73  // EX_CANTCREAT
        }
    }
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "The YAML config (default: config/genworker.yaml when it exists).")
    var config: String?

    @Option(name: .long, help: "AMQP URL, or several separated by commas; overrides amqp.url(s) and GENWORKER_AMQP_URL.")
    var url: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default: log.level).")
    var logLevel: String?

    @Option(name: .long, help: "Log format: text or json (default: log.format).")
    var logFormat: String?

    func load() throws -> WorkerConfiguration {
        let path = config ?? (FileManager.default.fileExists(atPath: "config/genworker.yaml") ? "config/genworker.yaml" : nil)
        var configuration = try WorkerConfiguration.load(path: path)
        if let url {
            configuration.amqp.setEndpoints(url)
            try configuration.validate()
        }
        guard let level = Logger.Level(rawValue: logLevel ?? configuration.log.level) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["text", "json"].contains(logFormat ?? configuration.log.format) else { throw ValidationError("--log-format must be text or json") }
        let json = (logFormat ?? configuration.log.format) == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return configuration
    }

    /// Connects to the first node of `amqp.urls` (or `amqp.url`) that answers.
    func connect(_ configuration: WorkerConfiguration) throws(GenWorkerError) -> AMQPConnection {
        var failure: GenWorkerError?
        for url in configuration.amqp.endpoints {
            do { return try AMQPConnection(url: url) } catch { failure = failure ?? .connecting(to: url, error) }
        }
        throw failure!
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the worker until SIGTERM or SIGINT.")
    @OptionGroup var options: CommonOptions

    @Option(help: "On SIGTERM/SIGINT: drain (finish running jobs) or requeue (stop them, give them back). Default: shutdown.mode.")
    var shutdown: String?

    func run() async throws {
        let configuration = try options.load()
        var mode: ShutdownMode?
        if let shutdown {
            guard let chosen = ShutdownMode(rawValue: shutdown) else { throw ValidationError("--shutdown must be drain or requeue") }
            mode = chosen
        }
        try await WorkerApplication.run(configuration: configuration, mode: mode, logger: Logger(label: "genworker"))
    }
}

struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the web dashboard (dashboard.address, dashboard.port) until SIGTERM or SIGINT.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let configuration = try options.load()
        try await DashboardServices.run(configuration: configuration, logger: Logger(label: "genworker-dashboard"))
    }
}

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password", abstract: "Read a password on stdin, print its bcrypt hash for dashboard.users.")

    func run() throws {
        guard let password = readLine(strippingNewline: true), !password.isEmpty else { throw ValidationError("give the password on stdin") }
        print(DashboardPassword.hash(password))
    }
}

struct Declare: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Declare the exchanges and queues of the protocol.")
    @OptionGroup var options: CommonOptions

    func run() throws {
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        do {
            try Topology.declare(on: try connection.openChannel(), configuration: configuration)
        } catch {
            throw GenWorkerError(.brokerFailed, "declaring the topology failed: \(error)")
        }
        print("declared the genworker topology on \(GenWorkerError.redacted(url: configuration.amqp.url))")
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a job, queued or running.")
    @OptionGroup var options: CommonOptions
    @Argument(help: "The job id.") var id: String

    func run() throws {
        guard JobValidator.isValidID(id) else { throw ValidationError("the id must match \(JobValidator.idPattern)") }
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let confirm: AMQPConfirm
        do {
            let channel = try connection.openChannel()
            try channel.enableConfirms()
            confirm = try channel.publishConfirmed(
                exchange: configuration.topology.cancelExchange, routingKey: "",
                body: try ProtocolCoding.encode(CancelMessage(id: id)), properties: .persistentJSON())
        } catch let error as AMQPError {
            throw GenWorkerError(.brokerFailed, "sending the cancel failed: \(error)")
        }
        guard confirm == .ack else { throw GenWorkerError(.brokerFailed, "the broker refused the cancel (basic.nack)") }
        print("cancel sent for \(id)")
    }
}

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Submit a job; with --wait, follow it to its result.")
    @OptionGroup var options: CommonOptions
    @Option(help: "The task: t2v-A14B, i2v-A14B, ti2v-5B, s2v-14B, animate-14B.") var task: String
    @Option(name: .customLong("param"), help: "A generate.py option without dashes, as key=value (value parsed as JSON when it is JSON).")
    var params: [String] = []
    @Option(help: "The job id (default: a new UUID).") var id: String?
    @Option(help: "Timeout in seconds.") var timeoutS: Int?
    @Flag(help: "Wait for the result and print the events.") var wait = false

    func run() throws {
        let configuration = try options.load()
        let jobID = id ?? UUID().uuidString.lowercased()
        var job = JobMessage(id: jobID, task: task, timeoutSeconds: timeoutS)
        for param in params {
            guard let eq = param.firstIndex(of: "=") else { throw ValidationError("--param takes key=value, not '\(param)'") }
            job.params[String(param[..<eq])] = .parsingLeniently(String(param[param.index(after: eq)...]))
        }
        let body = try ProtocolCoding.encode(job)
        let connection = try options.connect(configuration)
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = jobID
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        do {
            let channel = try connection.openChannel()
            if wait {
                let queue = try channel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
                try channel.bindQueue(queue, exchange: configuration.topology.eventsExchange, routingKey: "\(jobID).*")
                try channel.consume(queue: queue, noAck: true)
            }
            try channel.enableConfirms()
            guard
                try channel.publishConfirmed(
                    exchange: configuration.topology.jobsExchange, routingKey: task,
                    body: body, properties: properties, mandatory: true) == .ack
            else {
                throw GenWorkerError(.brokerFailed, "the broker refused the job (basic.nack)")
            }
        } catch let error as AMQPError {
            throw GenWorkerError(.brokerFailed, "submitting the job failed: \(error)")
        }
        FileHandle.standardOutput.write(Data("submitted \(jobID)\n".utf8))
        if wait { try EventPrinter.follow(connection: connection, until: jobID, cancelExchange: configuration.topology.cancelExchange) }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print job events as they arrive (one job, or all).")
    @OptionGroup var options: CommonOptions
    @Argument(help: "A job id; without one, every job's events.") var id: String?

    func run() throws {
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let channel = try connection.openChannel()
        let queue = try channel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        try channel.bindQueue(queue, exchange: configuration.topology.eventsExchange, routingKey: id.map { "\($0).*" } ?? "#")
        // Bound first, then the ledger: a job that ends in between is seen one way or the other.
        if let id, let result = try LedgerReader.read(connection: connection, configuration: configuration).jobs[id]?.result {
            let line = isatty(1) == 1 ? EventPrinter.human(result) + "\n" : String(decoding: try result.encoded(), as: UTF8.self) + "\n"
            FileHandle.standardOutput.write(Data(line.utf8))
            return
        }
        try channel.consume(queue: queue, noAck: true)
        try EventPrinter.follow(connection: connection, until: id)
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what became of a job, from the ledger, as one JSON object (exit 3 when the id is unknown).")
    @OptionGroup var options: CommonOptions
    @Argument(help: "The job id.") var id: String

    func run() throws {
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let ledger = try LedgerReader.read(connection: connection, configuration: configuration)
        guard let job = ledger.jobs[id], job.known else {
            FileHandle.standardError.write(
                Data(
                    "genworker: no job '\(id)' in the ledger's window (topology.ledger_retention_h = \(String(format: "%g", configuration.topology.ledgerRetentionHours)) h)\n"
                        .utf8))
            throw ExitCode(3)
        }
        FileHandle.standardOutput.write(Data(try ProtocolCoding.encode(JobStatus(job)) + [UInt8(ascii: "\n")]))
    }
}

struct Jobs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent jobs from the ledger, newest first: a table on a terminal, JSON lines otherwise.")
    @OptionGroup var options: CommonOptions
    @Option(help: "Only jobs in this state: queued, running or ended.") var state: String?
    @Option(help: "Only jobs submitted within this long: 90s, 15m, 2h, 1d (default: the whole window).") var since: String?
    @Option(help: "At most this many jobs.") var limit = 1000

    func run() throws {
        let wanted = try state.map { name throws -> LedgerState.JobState in
            guard let state = LedgerState.JobState(rawValue: name) else { throw ValidationError("--state must be queued, running or ended") }
            return state
        }
        let from = try since.map { Date().addingTimeInterval(-(try parseDuration($0))) }
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let ledger = try LedgerReader.read(connection: connection, configuration: configuration)
        let jobs = ledger.knownJobs(state: wanted, since: from).prefix(limit)
        if isatty(1) == 1 {
            var rows = [["ID", "TASK", "STATE", "WORKER", "ATTEMPT", "PROGRESS", "RESULT", "SUBMITTED"]]
            for job in jobs {
                let last = job.attempts.last
                rows.append([
                    job.id, job.task ?? "-", job.state.rawValue, last?.worker ?? "-", last.map { "\($0.number)" } ?? "-",
                    job.progress.map { "\($0.percent)%" } ?? "-",
                    job.result.map { "\($0.event.rawValue)\($0.reason.map { " (\($0.rawValue))" } ?? "")" } ?? "-",
                    (job.submittedAt ?? job.lastChange).formatted(.iso8601),
                ])
            }
            Table.print(rows)
        } else {
            // A line per job: the log tail stays with `status ID`.
            for job in jobs {
                var status = JobStatus(job)
                status.result?.logTail = nil
                FileHandle.standardOutput.write(Data(try ProtocolCoding.encode(status) + [UInt8(ascii: "\n")]))
            }
        }
    }
}

struct Workers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the fleet from the workers' heartbeats in the ledger: a table on a terminal, JSON lines otherwise.")
    @OptionGroup var options: CommonOptions

    /// A worker as `genworker workers` prints it.
    struct Row: Encodable {
        var name: String
        var node: String?
        var slots: Int
        var busy: Int
        var running: [String]
        var lastHeartbeat: Date
        var online: Bool
        var version: String?
        enum CodingKeys: String, CodingKey {
            case name, node, slots, busy, running, online, version
            case lastHeartbeat = "last_heartbeat"
        }
    }

    func run() throws {
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let ledger = try LedgerReader.read(connection: connection, configuration: configuration)
        // Heartbeats come every lease/4: three missed ones and the worker is shown offline.
        let silentAfter = configuration.jobs.leaseSeconds * 0.75
        let rows = ledger.workers.values.sorted { $0.name < $1.name }.map { worker in
            Row(
                name: worker.name, node: worker.node, slots: worker.slots, busy: worker.running.count, running: worker.running,
                lastHeartbeat: worker.lastHeartbeat, online: Date().timeIntervalSince(worker.lastHeartbeat) < silentAfter, version: worker.version)
        }
        if isatty(1) == 1 {
            var table = [["NAME", "NODE", "SLOTS", "RUNNING", "LAST HEARTBEAT", "STATE", "VERSION"]]
            for row in rows {
                table.append([
                    row.name, row.node ?? "-", "\(row.busy)/\(row.slots)", row.running.isEmpty ? "-" : row.running.joined(separator: ","),
                    "\(Int(Date().timeIntervalSince(row.lastHeartbeat))) s ago", row.online ? "online" : "offline", row.version ?? "-",
                ])
            }
            Table.print(table)
        } else {
            for row in rows { FileHandle.standardOutput.write(Data(try ProtocolCoding.encode(row) + [UInt8(ascii: "\n")])) }
        }
    }
}

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
