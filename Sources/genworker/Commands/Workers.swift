import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore

struct Workers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the fleet from the workers' heartbeats in the ledger: a table on a terminal, JSON lines otherwise.")
    @OptionGroup var options: CommonOptions

    /// A worker as `genworker workers` prints it.
    struct Row: Codable {
        var name: String
        var node: String?
        var slots: Int
        var busy: Int
        var running: [String]
        var lastHeartbeat: Date
        var online: Bool
        var version: String?
        var quarantined: Bool?
        enum CodingKeys: String, CodingKey {
            case name, node, slots, busy, running, online, version, quarantined
            case lastHeartbeat = "last_heartbeat"
        }
    }

    func run() async throws {
        let rows: [Row]
        if let api = options.apiURL { rows = try await fromAPI(api) } else { rows = try fromLedger() }
        if isatty(1) == 1 {
            var table = [["NAME", "NODE", "SLOTS", "RUNNING", "LAST HEARTBEAT", "STATE", "VERSION"]]
            for row in rows {
                table.append([
                    row.name, row.node ?? "-", "\(row.busy)/\(row.slots)", row.running.isEmpty ? "-" : row.running.joined(separator: ","),
                    "\(Int(Date().timeIntervalSince(row.lastHeartbeat))) s ago",
                    row.quarantined == true ? "quarantined" : row.online ? "online" : "offline", row.version ?? "-",
                ])
            }
            Table.print(table)
        } else {
            for row in rows { FileHandle.standardOutput.write(Data(try ProtocolCoding.encode(row) + [UInt8(ascii: "\n")])) }
        }
    }

    private func fromLedger() throws -> [Row] {
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let ledger = try LedgerReader.read(connection: connection, configuration: configuration)
        // Heartbeats come every lease/4: three missed ones and the worker is shown offline.
        let silentAfter = configuration.jobs.leaseSeconds * 0.75
        return ledger.workers.values.sorted { $0.name < $1.name }.map { worker in
            Row(
                name: worker.name, node: worker.node, slots: worker.slots, busy: worker.running.count, running: worker.running,
                lastHeartbeat: worker.lastHeartbeat, online: Date().timeIntervalSince(worker.lastHeartbeat) < silentAfter, version: worker.version,
                quarantined: worker.quarantined)
        }
    }

    /// `GET /v1/workers` (`--api`): the API's fold, which decides online by `dashboard.offline_after_s`.
    private func fromAPI(_ api: String) async throws -> [Row] {
        struct List: Decodable { var workers: [Row] }
        let (status, body) = try await APIRead.get(api, "/v1/workers")
        guard status == 200 else { throw GenWorkerError(.brokerFailed, "the API answered \(status): \(APIRead.message(body))") }
        return try ProtocolCoding.decode(List.self, from: body).workers
    }
}
