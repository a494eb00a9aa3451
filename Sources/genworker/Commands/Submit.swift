import AMQP
import ArgumentParser
import Foundation
import GenWorkerCore

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Submit a job; with --wait, follow it to its result.")
    @OptionGroup var options: CommonOptions
    @Option(help: "The task: t2v-A14B, i2v-A14B, ti2v-5B, s2v-14B, animate-14B.") var task: String
    @Option(name: .customLong("param"), help: "A generate.py option without dashes, as key=value (value parsed as JSON when it is JSON).")
    var params: [String] = []
    @Option(help: "The job id (default: a new UUID).") var id: String?
    @Option(help: "Timeout in seconds.") var timeoutS: Int?
    @Flag(help: "Wait for the result and print the events.") var wait = false

    func run() throws {
        let configuration = try options.load()
        let jobID = id ?? UUID().uuidString.lowercased()
        var job = JobMessage(id: jobID, task: task, timeoutSeconds: timeoutS)
        for param in params {
            guard let eq = param.firstIndex(of: "=") else { throw ValidationError("--param takes key=value, not '\(param)'") }
            job.params[String(param[..<eq])] = .parsingLeniently(String(param[param.index(after: eq)...]))
        }
        let body = try ProtocolCoding.encode(job)
        let connection = try options.connect(configuration)
        var properties = AMQPProperties.persistentJSON()
        properties.messageID = jobID
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        do {
            let channel = try connection.openChannel()
            if wait {
                let queue = try channel.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
                try channel.bindQueue(queue, exchange: configuration.topology.eventsExchange, routingKey: "\(jobID).*")
                try channel.consume(queue: queue, noAck: true)
            }
            try channel.enableConfirms()
            guard
                try channel.publishConfirmed(
                    exchange: configuration.topology.jobsExchange, routingKey: task,
                    body: body, properties: properties, mandatory: true) == .ack
            else {
                throw GenWorkerError(.brokerFailed, "the broker refused the job (basic.nack)")
            }
        } catch let error as AMQPError {
            throw GenWorkerError(.brokerFailed, "submitting the job failed: \(error)")
        }
        FileHandle.standardOutput.write(Data("submitted \(jobID)\n".utf8))
        if wait { try EventPrinter.follow(connection: connection, until: jobID, cancelExchange: configuration.topology.cancelExchange) }
    }
}
