import Foundation
import GenWorker
import GenWorkerCore
import Hummingbird
import HummingbirdAuth
import HummingbirdBasicAuth
import HummingbirdBcrypt
import Logging
import Mustache
import ServiceLifecycle

/// A dashboard user (`dashboard.users`): a name and a bcrypt hash, checked by
/// hummingbird-auth's `BasicAuthenticator`.
public struct DashboardUser: PasswordAuthenticatable, Sendable {
    public let name: String
    public let passwordHash: String?
}

public typealias DashboardContext = BasicAuthRequestContext<DashboardUser>

/// `genworker dashboard` (and `dashboard.enabled` in a worker): the fleet's web UI on
/// Hummingbird, over a ``FleetView`` that a ``FleetFollower`` keeps up from the ledger.
/// Pages: jobs (filters, live progress bars over server-sent events, cancel), a job
/// (params, command line, attempts, timings, log tail, result, the video), submit (a form
/// per task, validated by the worker's own ``JobValidator``), workers, queues. `/healthz`
/// is open; cancel and submit need a `dashboard.users` user (HTTP basic auth).
public struct DashboardApplication: Service {
    let application: Application<RouterResponder<DashboardContext>>
    let view: FleetView
    let address: String
    let port: Int

    public init(
        configuration: WorkerConfiguration, follower: FleetFollower, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws {
        let dashboard = configuration.dashboard
        let view = follower.view
        let pages = try Pages(configuration: configuration, view: view)
        let users = dashboard.users
        let router = Router(context: DashboardContext.self)
        router.add(
            middleware: BasicAuthenticator { name, _ in users[name].map { DashboardUser(name: name, passwordHash: $0) } })
        router.add(middleware: OriginCheckMiddleware(allowed: Set(configuration.api.allowedOrigins)))
        router.get("/healthz") { _, _ in
            let health = view.health
            return DashboardResponse.text(health.connected ? .ok : .serviceUnavailable, health.connected ? "ok\n" : "broker unreachable\n")
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: view.metricsText(now: Date(), offlineAfter: dashboard.offlineAfterSeconds))))
        }
        DashboardPageRoutes(pages: pages, outputsDir: dashboard.outputsDir).addRoutes(to: router.group())
        DashboardAPIRoutes(configuration: configuration, view: view, pages: pages, follower: follower, logger: logger)
            .addRoutes(to: router.group("api"))
        if configuration.api.enabled {
            router.add(middleware: MethodCheck())
            APIRoutes(configuration: configuration, view: view, follower: follower, logger: logger).addRoutes(to: router.group("v1"))
        }

        self.view = view
        address = dashboard.address
        port = dashboard.port
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .warning)
        application = Application(
            router: router,
            configuration: .init(address: .hostname(dashboard.address, port: dashboard.port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: serverLogger)
    }

    public func run() async throws {
        do {
            // Live pages hold their responses open: end them, or the server would wait for them forever.
            try await withGracefulShutdownHandler {
                try await application.run()
            } onGracefulShutdown: { [view] in
                view.finishAll()
            }
        } catch {
            throw GenWorkerError(
                .listenFailed, "cannot serve the dashboard on \(MetricsEndpoint.show(address)):\(port): \(error)",
                hint: "another process holds the port? pick dashboard.port (0: any free port)")
        }
    }
}

/// bcrypt for `dashboard.users` (`genworker hash-password`).
public enum DashboardPassword {
    public static func hash(_ password: String) -> String { Bcrypt.hash(password, cost: 12) }
    public static func verify(_ password: String, hash: String) -> Bool { Bcrypt.verify(password, hash: hash) }
}
