import AMQP
import ArgumentParser
import Foundation
import GenWorkerCore

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a job, queued or running.")
    @OptionGroup var options: CommonOptions
    @Argument(help: "The job id.") var id: String

    func run() throws {
        guard JobValidator.isValidID(id) else { throw ValidationError("the id must match \(JobValidator.idPattern)") }
        let configuration = try options.load()
        let connection = try options.connect(configuration)
        let confirm: AMQPConfirm
        do {
            let channel = try connection.openChannel()
            try channel.enableConfirms()
            confirm = try channel.publishConfirmed(
                exchange: configuration.topology.cancelExchange, routingKey: "",
                body: try ProtocolCoding.encode(CancelMessage(id: id)), properties: .persistentJSON())
        } catch let error as AMQPError {
            throw GenWorkerError(.brokerFailed, "sending the cancel failed: \(error)")
        }
        guard confirm == .ack else { throw GenWorkerError(.brokerFailed, "the broker refused the cancel (basic.nack)") }
        print("cancel sent for \(id)")
    }
}
