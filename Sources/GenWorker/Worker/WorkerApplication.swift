import Logging
import ServiceLifecycle

/// `genworker run`: the worker and its metrics endpoint as one `ServiceGroup`. The endpoint
/// listens first (a taken port stops the worker before it takes a job); on SIGTERM/SIGINT
/// the worker shuts down first (it drains or requeues), then the endpoint.
public enum WorkerApplication {
    public static func run(configuration: WorkerConfiguration, mode: ShutdownMode? = nil, logger: Logger) async throws {
        let worker = Worker(configuration: configuration, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var service = WorkerService(worker: worker, mode: mode)
        if configuration.metrics.enabled {
            let (listening, continuation) = AsyncStream<Void>.makeStream()
            let registry = Observability.bootstrapPrometheus()
            let endpoint = MetricsEndpoint(
                configuration: configuration.metrics, isReady: { worker.isConsuming },
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
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
