import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent jobs from the ledger, newest first: a table on a terminal, JSON lines otherwise.")
    @OptionGroup var options: CommonOptions
    @Option(help: "Only jobs in this state: queued, running or ended.") var state: String?
    @Option(help: "Only jobs submitted within this long: 90s, 15m, 2h, 1d (default: the whole window).") var since: String?
    @Option(help: "At most this many jobs.") var limit = 1000

    func run() async throws {
        let wanted = try state.map { name throws -> LedgerState.JobState in
            guard let state = LedgerState.JobState(rawValue: name) else { throw ValidationError("--state must be queued, running or ended") }
            return state
        }
        let from = try since.map { Date().addingTimeInterval(-(try parseDuration($0))) }
        if let api = options.apiURL { return try await fromAPI(api, state: wanted, since: from) }
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

    /// `GET /v1/jobs` page after page (`--api`): the API's Job objects, one JSON line each, or a table.
    private func fromAPI(_ api: String, state: LedgerState.JobState?, since: Date?) async throws {
        struct Page: Decodable {
            var jobs: [JSONValue]
            var nextCursor: String?
            enum CodingKeys: String, CodingKey {
                case jobs
                case nextCursor = "next_cursor"
            }
        }
        var query = "limit=\(min(max(limit, 1), 1000))"
        // The API's states are the ended ones by name; `ended` is all three.
        if let state, state != .ended { query += "&state=\(state.rawValue)" }
        if let since { query += "&since=\(since.formatted(.iso8601))" }
        var rows: [JSONValue] = []
        var cursor: String?
        repeat {
            let (status, body) = try await APIRead.get(api, "/v1/jobs?\(query)" + (cursor.map { "&cursor=\($0)" } ?? ""))
            guard status == 200 else { throw GenWorkerError(.brokerFailed, "the API answered \(status): \(APIRead.message(body))") }
            let page = try ProtocolCoding.decode(Page.self, from: body)
            rows += page.jobs.filter { job in
                guard state == .ended, case .object(let fields) = job, case .string(let s)? = fields["state"] else { return true }
                return s != "queued" && s != "running"
            }
            cursor = page.nextCursor
        } while cursor != nil && rows.count < limit
        for job in rows.prefix(limit) { FileHandle.standardOutput.write(Data(try ProtocolCoding.encode(job) + [UInt8(ascii: "\n")])) }
    }
}
