import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore

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
