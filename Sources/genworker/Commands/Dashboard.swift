import ArgumentParser
import Foundation
import GenWorkerWeb
import Logging

struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the web dashboard (dashboard.address, dashboard.port) until SIGTERM or SIGINT.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let configuration = try options.load()
        try options.startLogging(configuration)
        try await DashboardServices.run(configuration: configuration, logger: Logger(label: "genworker-dashboard"))
    }
}
