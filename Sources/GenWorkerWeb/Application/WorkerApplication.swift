import GenWorker
import GenWorkerCore
import Logging
import ServiceLifecycle
import Transfer

/// `genworker run`: the worker and its metrics endpoint as one `ServiceGroup`. The endpoint
/// listens first (a taken port stops the worker before it takes a job); on SIGTERM/SIGINT
/// the worker shuts down first (it drains or requeues), then the endpoint.
public enum WorkerApplication {
    public static func run(configuration: WorkerConfiguration, mode: ShutdownMode? = nil, logger: Logger) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // Listed before the worker, so it stops after it: the worker's last results still go out.
        let webhooks = try WebhookService.secret(configuration: configuration).map {
            WebhookService(configuration: configuration, secret: $0, logger: logger)
        }
        if let webhooks { services.append(.init(service: webhooks)) }
        let worker = Worker(configuration: configuration, logger: logger, webhooks: webhooks)
        var service = WorkerService(worker: worker, mode: mode)
        if configuration.metrics.enabled {
            let (listening, continuation) = AsyncStream<Void>.makeStream()
            let registry = Observability.bootstrapPrometheus()
            let endpoint = MetricsEndpoint(
                configuration: configuration.metrics, unready: { worker.unready }, stalled: { worker.ownerLoopStalled },
                metrics: { registry.emitToString() }, logger: logger,
                onListening: { port in
                    logger.info("metrics and health on \(MetricsEndpoint.show(configuration.metrics.address)):\(port) (/metrics, /healthz, /readyz)")
                    continuation.yield()
                    continuation.finish()
                })
            services.append(.init(service: endpoint))
            service.startAfter = listening
        }
        services.append(.init(service: service))
        if configuration.dashboard.enabled { services += try DashboardServices.make(configuration: configuration, logger: logger) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The dashboard's services: the follower of the ledger and the web application. Served by
/// `genworker dashboard`, or by `genworker run` with `dashboard.enabled`.
public enum DashboardServices {
    public static func make(
        configuration: WorkerConfiguration, logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let view = FleetView(retention: configuration.topology.ledgerRetention, maxJobs: configuration.dashboard.maxJobs)
        let follower = FleetFollower(configuration: configuration, view: view, logger: logger)
        let address = configuration.dashboard.address
        let application = try DashboardApplication(
            configuration: configuration, follower: follower, logger: logger,
            onListening: { port in
                logger.info("dashboard on http://\(MetricsEndpoint.show(address)):\(port)/")
                onListening(port)
            })
        return [.init(service: follower), .init(service: application)]
    }

    /// `genworker dashboard`: the two services alone, until SIGTERM or SIGINT.
    public static func run(configuration: WorkerConfiguration, logger: Logger) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: try make(configuration: configuration, logger: logger), gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
