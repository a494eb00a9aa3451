import Foundation
import GenWorkerCore
import Logging
import Metrics
import Prometheus
import Supervision

/// Prometheus metrics through swift-metrics (served by ``MetricsEndpoint``), and JSON-lines logs.
public enum Observability {
    /// Bootstraps swift-metrics with Prometheus (once per process) and returns the registry.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // GPU jobs run for minutes to hours; cancels and queue waits span ms to hours.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500),
            .seconds(1), .seconds(5), .seconds(30), .seconds(60), .seconds(300), .seconds(900),
            .seconds(1800), .seconds(3600), .seconds(7200), .seconds(21600),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }
}

/// swift-log as JSON lines, one object per line, for log shippers:
/// `{"ts":"…","level":"info","label":"genworker","msg":"…","job":"…"}`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        var object: [String: String] = [
            "ts": Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)),
            "level": level.rawValue, "label": label, "msg": message.description,
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) where object[key] == nil {
            object[key] = value.description
        }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }
}
