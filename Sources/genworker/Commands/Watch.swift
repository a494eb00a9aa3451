import ArgumentParser
import Foundation
import GenWorker

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
