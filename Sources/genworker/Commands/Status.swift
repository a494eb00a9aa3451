import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Print what became of a job, from the ledger (or the HTTP API's Job with --api), as one JSON object (exit 3 when the id is unknown).")
    @OptionGroup var options: CommonOptions
    @Argument(help: "The job id.") var id: String

    func run() async throws {
        if let api = options.apiURL {
            guard JobValidator.isValidID(id) else { throw ValidationError("a job id is 1 to 128 letters, digits, '-' or '_'") }
            let (status, body) = try await APIRead.get(api, "/v1/jobs/\(id)")
            switch status {
            case 200: FileHandle.standardOutput.write(Data(body + [UInt8(ascii: "\n")]))
            case 404:
                FileHandle.standardError.write(Data("genworker: \(APIRead.message(body))\n".utf8))
                throw ExitCode(3)
            default: throw GenWorkerError(.brokerFailed, "the API answered \(status): \(APIRead.message(body))")
            }
            return
        }
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
