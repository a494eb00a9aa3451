import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore

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
