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

        router.get("/healthz") { _, _ in
            let health = view.health
            return Self.text(health.connected ? .ok : .serviceUnavailable, health.connected ? "ok\n" : "broker unreachable\n")
        }
        // Pages.
        router.get("/") { request, _ in
            let q = request.uri.queryParameters
            return Self.html(
                pages.jobs(
                    state: q["state"].map(String.init), task: q["task"].map(String.init), worker: q["worker"].map(String.init),
                    text: q["q"].map(String.init)))
        }
        router.get("/jobs") { request, _ -> Response in
            guard let id = request.uri.queryParameters["id"], !id.isEmpty else { return Self.redirect("/") }
            return Self.redirect("/jobs/\(id)")
        }
        router.get("/jobs/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let page = pages.job(id) else { return Self.text(.notFound, "no job '\(id)' in the ledger's window\n") }
            return Self.html(page)
        }
        router.get("/workers") { _, _ in Self.html(pages.workers()) }
        router.get("/queues") { _, _ in Self.html(pages.queues()) }
        router.get("/submit") { _, _ in Self.html(pages.submit()) }
        router.get("/login") { _, context -> Response in
            guard context.identity != nil else { return Self.challenge() }
            return Self.redirect("/")
        }
        // The video, when the dashboard sees the outputs.
        router.get("/outputs/:file") { request, context -> Response in
            let file = try context.parameters.require("file")
            guard let dir = dashboard.outputsDir, file.hasSuffix(".mp4"), JobValidator.isValidID(String(file.dropLast(4))) else {
                return Self.text(.notFound, "no such video\n")
            }
            let path = (dir as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: path) else { return Self.text(.notFound, "no such video\n") }
            return Response(status: .ok, headers: [.contentType: "video/mp4"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        // JSON.
        router.get("/api/jobs") { request, _ -> Response in
            let q = request.uri.queryParameters
            let jobs = view.jobs(
                state: q["state"].map(String.init), task: q["task"].map(String.init), worker: q["worker"].map(String.init),
                text: q["q"].map(String.init), limit: Int(q["limit"] ?? "200") ?? 200)
            return try Self.json(jobs)
        }
        router.get("/api/jobs/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let job = view.job(id) else { return Self.text(.notFound, "unknown job\n") }
            return try Self.json(job.summary)
        }
        router.get("/api/workers") { _, _ in
            try Self.json(view.workers(now: Date(), offlineAfter: dashboard.offlineAfterSeconds, dropAfter: dashboard.dropAfterSeconds))
        }
        router.get("/api/queues") { _, _ in try Self.json(view.queues) }
        // Live: every change of a job, as server-sent events.
        router.get("/api/stream") { _, _ -> Response in
            let (subscription, updates) = view.subscribe()
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: .init { writer in
                    // A page that went away fails the next write (a ping every 5 s at the latest).
                    defer { view.unsubscribe(subscription) }
                    try await writer.write(ByteBuffer(string: ": connected\n\n"))
                    for await json in updates {
                        try await writer.write(ByteBuffer(string: json == ":" ? ":\n\n" : "data: \(json)\n\n"))
                    }
                    try await writer.finish(nil)
                })
        }
        // Actions: a user is needed.
        router.post("/api/jobs") { request, context -> Response in
            guard let user = context.identity else { return Self.challenge() }
            let body = try await request.body.collect(upTo: configuration.jobs.maxBodyBytes)
            let bytes = Array(body.readableBytesView)
            let validator = JobValidator(configuration: configuration)
            let job: JobMessage
            do {
                _ = try validator.validate(body: bytes, fallbackID: nil)
                job = try ProtocolCoding.decode(JobMessage.self, from: bytes)
            } catch let rejection as JobRejection {
                return Self.text(.badRequest, rejection.message + "\n")
            } catch {
                return Self.text(.badRequest, "not a job: \(error)\n")
            }
            pages.submitted(job.id, by: user.name)
            try await follower.send(.submit(job, user: user.name))
            logger.info("dashboard: \(user.name) submitted \(job.id)")
            return try Self.json(["id": job.id], status: .accepted)
        }
        router.post("/api/jobs/:id/cancel") { _, context -> Response in
            guard let user = context.identity else { return Self.challenge() }
            let id = try context.parameters.require("id")
            guard JobValidator.isValidID(id) else { return Self.text(.badRequest, "not a job id\n") }
            guard dashboard.admins.contains(user.name) || pages.submitter(of: id) == user.name else {
                return Self.text(.forbidden, "\(user.name) may cancel only the jobs they submitted here (dashboard.admins may cancel any)\n")
            }
            try await follower.send(.cancel(id: id, user: user.name))
            logger.info("dashboard: \(user.name) cancelled \(id)")
            return try Self.json(["id": id, "state": "cancelling"], status: .accepted)
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

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response { MetricsEndpoint.text(status, body) }

    static func html(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try ProtocolCoding.encode(value))))
    }

    static func redirect(_ location: String) -> Response { Response(status: .seeOther, headers: [.location: location]) }

    /// 401 with a challenge, so a browser asks for the user and password.
    static func challenge() -> Response {
        var response = text(.unauthorized, "sign in: cancel and submit need a dashboard user (dashboard.users)\n")
        response.headers[.wwwAuthenticate] = #"Basic realm="genworker", charset="UTF-8""#
        return response
    }
}

/// bcrypt for `dashboard.users` (`genworker hash-password`).
public enum DashboardPassword {
    public static func hash(_ password: String) -> String { Bcrypt.hash(password, cost: 12) }
    public static func verify(_ password: String, hash: String) -> Bool { Bcrypt.verify(password, hash: hash) }
}
