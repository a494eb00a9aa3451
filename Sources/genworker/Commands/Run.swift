import ArgumentParser
import Foundation
import GenWorkerCore
import GenWorkerWeb
import Logging

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the worker until SIGTERM or SIGINT.")
    @OptionGroup var options: CommonOptions

    @Option(help: "On SIGTERM/SIGINT: drain (finish running jobs) or requeue (stop them, give them back). Default: shutdown.mode.")
    var shutdown: String?

    func run() async throws {
        let configuration = try options.load()
        try options.startLogging(configuration)
        var mode: ShutdownMode?
        if let shutdown {
            guard let chosen = ShutdownMode(rawValue: shutdown) else { throw ValidationError("--shutdown must be drain or requeue") }
            mode = chosen
        }
        try await WorkerApplication.run(configuration: configuration, mode: mode, logger: Logger(label: "genworker"))
    }
}
