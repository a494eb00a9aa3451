import ArgumentParser
import Foundation
import GenWorkerCore
import Logging
import Transfer

/// A job's `fetch` or `upload` step, run by the worker's supervisor as a child process (like
/// the generator): reads the plan the worker wrote, moves the files, writes the report, and
/// says by its exit status how it went (`TransferExit`). SIGTERM (a cancel, the job's
/// timeout) stops it: a multipart upload is aborted first, a partial download removed.
struct TransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer", abstract: "A job's fetch or upload step (the worker runs it; not for people).", shouldDisplay: false)
    @Option(help: "The plan the worker wrote (JSON).") var plan: String
    @Option(help: "Where the report goes (JSON).") var report: String
    @Option(help: "Seconds all fetches may take together.") var fetchTimeout: Double = 600

    func run() async throws {
        // One stream for the log and the final line, so the final line is last.
        var logger = Logger(label: "genworker.transfer") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .info
        guard let data = FileManager.default.contents(atPath: plan), let plan = try? JSONDecoder().decode(TransferPlan.self, from: data) else {
            Self.fail(.badPlan, "cannot read the plan \(self.plan)")
        }
        let run = TransferRun(
            plan: plan, environment: ProcessInfo.processInfo.environment, fetchTimeoutSeconds: fetchTimeout, logger: logger)
        let work = Task { try await run.run() }
        // SIGTERM cancels the work; its own clean-up (an abort, a partial file) still runs.
        signal(SIGTERM, SIG_IGN)
        let terminate = DispatchSource.makeSignalSource(signal: SIGTERM)
        terminate.setEventHandler { work.cancel() }
        terminate.resume()
        do {
            let done = try await work.value
            let encoded = try JSONEncoder().encode(done)
            guard FileManager.default.createFile(atPath: report, contents: encoded) else { Self.fail(.badPlan, "cannot write \(report)") }
        } catch let error as TransferError {
            if error.code == .cancelled { Foundation.exit(128 + SIGTERM) }
            guard plan.upload == nil else { Self.fail(.uploadFailed, error.message) }
            // The input's fault: refused, missing, too large, the wrong kind. Else the fleet's.
            switch error.code {
            case .refused, .notFound, .tooLarge, .wrongKind: Self.fail(.invalidInput, error.message)
            case .status(let status) where status < 500 && status != 429 && status != 408: Self.fail(.invalidInput, error.message)
            default: Self.fail(.fetchFailed, error.message)
            }
        }
    }

    /// The last line of the step's output is the reason the job's result gives.
    static func fail(_ exit: TransferExit, _ message: String) -> Never {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
        Foundation.exit(exit.rawValue)
    }
}
