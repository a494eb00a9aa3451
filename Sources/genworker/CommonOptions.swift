import AMQP
import ArgumentParser
import Foundation
import GenWorker
import GenWorkerCore
import Logging

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "The YAML config (default: config/genworker.yaml when it exists).")
    var config: String?

    @Option(name: .long, help: "AMQP URL, or several separated by commas; overrides amqp.url(s) and GENWORKER_AMQP_URL.")
    var url: String?

    @Option(
        name: .long,
        help:
            "The HTTP API (genworker dashboard) to ask instead of reading the ledger: status, jobs and workers (else GENWORKER_API_URL; token: GENWORKER_API_TOKEN)."
    )
    var api: String?

    /// `--api`, else `GENWORKER_API_URL`: where `status`, `jobs` and `workers` ask, in milliseconds, instead of reading the window.
    var apiURL: String? { api ?? ProcessInfo.processInfo.environment["GENWORKER_API_URL"].flatMap { $0.isEmpty ? nil : $0 } }

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default: log.level).")
    var logLevel: String?

    @Option(name: .long, help: "Log format: text or json (default: log.format).")
    var logFormat: String?

    /// The configuration: `--config` (or config/genworker.yaml), the environment, `--url`.
    func load() throws -> WorkerConfiguration {
        let path = config ?? (FileManager.default.fileExists(atPath: "config/genworker.yaml") ? "config/genworker.yaml" : nil)
        var configuration = try WorkerConfiguration.load(path: path)
        if let url {
            configuration.amqp.setEndpoints(url)
            try configuration.validate()
        }
        return configuration
    }

    /// Starts logging as `--log-level` and `--log-format` (or the config's `log` section) say:
    /// for the commands that run services. Once per process (swift-log's bootstrap).
    func startLogging(_ configuration: WorkerConfiguration) throws {
        guard let level = Logger.Level(rawValue: logLevel ?? configuration.log.level) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["text", "json"].contains(logFormat ?? configuration.log.format) else { throw ValidationError("--log-format must be text or json") }
        let json = (logFormat ?? configuration.log.format) == "json"
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Connects to the first node of `amqp.urls` (or `amqp.url`) that answers (``BrokerNodes``).
    func connect(_ configuration: WorkerConfiguration) throws -> AMQPConnection {
        var nodes = BrokerNodes(configuration)
        return try nodes.connect { url in
            do { return try AMQPConnection(url: url) } catch let error as AMQPError { throw GenWorkerError.connecting(to: url, error) }
        }
    }
}
