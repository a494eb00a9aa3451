import GenWorker
import GenWorkerCore
import Hummingbird
import Logging
import ServiceLifecycle

/// `/metrics` (Prometheus), `/healthz` (the owner loop turns) and `/readyz` (connected, caught
/// up, consuming: not draining) as a
/// Hummingbird application: served concurrently, so a slow client never holds up a probe;
/// IPv6 and IPv4 with the default `metrics.address` `::`; a `Service` of the worker's
/// `ServiceGroup`, stopped with it after the worker.
public struct MetricsEndpoint: Service {
    let application: Application<RouterResponder<BasicRequestContext>>
    let address: String
    let port: Int

    /// `onListening` gets the port once the server listens (port 0 picks a free one).
    /// `metrics` renders the Prometheus text; `unready` answers /readyz (nil: ready, else
    /// why not); `stalled` (how long
    /// the worker's owner loop has not turned, past its bound) fails /healthz.
    public init(
        configuration: WorkerConfiguration.MetricsSection, unready: @escaping @Sendable () -> String?,
        stalled: @escaping @Sendable () -> Duration? = { nil },
        metrics: @escaping @Sendable () -> String, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeString(metrics())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: buffer))
        }
        router.get("/healthz") { _, _ in
            guard let quiet = stalled() else { return Self.text(.ok, "ok\n") }
            return Self.text(.serviceUnavailable, "the owner loop has not turned for \(Int(quiet.inSeconds)) s: wedged\n")
        }
        router.get("/readyz") { _, _ in
            guard let reason = unready() else { return Self.text(.ok, "ready\n") }
            return Self.text(.serviceUnavailable, reason + "\n")
        }
        address = configuration.address
        port = configuration.port
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .warning)  // no line per request
        application = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.address, port: configuration.port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: serverLogger)
    }

    public func run() async throws {
        do {
            try await application.run()
        } catch {
            throw GenWorkerError(
                .listenFailed, "cannot serve /metrics on \(Self.show(address)):\(port): \(error)",
                hint: "another process holds the port? pick metrics.port (0: any free port), or set metrics.enabled: false")
        }
    }

    /// `host:port` as a URL writes it (IPv6 in brackets).
    static func show(_ address: String) -> String { address.contains(":") ? "[\(address)]" : address }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var buffer = ByteBuffer()
        buffer.writeString(body)
        return Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: buffer))
    }
}
