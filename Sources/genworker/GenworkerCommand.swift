import AMQP
import ArgumentParser
import Foundation
import GenWorkerCore

@main
struct GenworkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genworker",
        abstract: "Runs Wan2.2 video-generation jobs from RabbitMQ, and talks to the workers.",
        subcommands: [
            Run.self, Submit.self, Cancel.self, Watch.self, Status.self, Jobs.self, Workers.self, Dashboard.self, HashPassword.self, Declare.self,
            TransferCommand.self,
        ])

    /// Usage errors (bad arguments) print the usage and exit 64; a runtime failure (a
    /// broker that is down, a port already taken, a bad config) prints one line saying what
    /// and what to try, and exits with its own code (`sysexits.h`), never with the usage.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as GenWorkerError {
            FileHandle.standardError.write(Data("genworker: \(error)\n".utf8))
            Foundation.exit(error.code.exitCode)
        } catch let error as AMQPError {
            // A broker failure after connecting (a closed channel, a lost connection).
            FileHandle.standardError.write(Data("genworker: the broker failed the request: \(error)\n".utf8))
            Foundation.exit(69)
        } catch {
            exit(withError: error)
        }
    }
}

extension GenWorkerError.Code {
    /// sysexits.h: EX_CONFIG 78, EX_UNAVAILABLE 69, EX_NOPERM 77, EX_OSERR 71, EX_DATAERR 65, EX_SOFTWARE 70, EX_TEMPFAIL 75.
    var exitCode: Int32 {
        switch self {
        case .configuration: 78
        case .brokerUnreachable: 69
        case .brokerRefused: 77
        case .brokerFailed: 69
        case .listenFailed: 71
        case .encoding: 65
        case .helperUnavailable: 70
        case .identityInUse: 75
        case .outputUnavailable: 73  // EX_CANTCREAT
        }
    }
}
