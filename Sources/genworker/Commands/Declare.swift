import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore

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
        // The node that answered (of `amqp.urls`, or `amqp.url`), its password hidden.
        print("declared the genworker topology on \(connection.configuration)")
    }
}
