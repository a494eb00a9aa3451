import Foundation
import GenWorker
import GenWorkerCore
import Hummingbird
import Logging

/// The dashboard's JSON under `/api`: jobs, a job, workers, queues, the live stream
/// (server-sent events), and the two actions that need a user: submit and cancel.
struct DashboardAPIRoutes {
    let configuration: WorkerConfiguration
    let view: FleetView
    let pages: Pages
    let follower: FleetFollower
    let logger: Logger

    func addRoutes(to group: RouterGroup<DashboardContext>) {
        let dashboard = configuration.dashboard
        group.get("/jobs") { request, _ -> Response in
            let q = request.uri.queryParameters
            let jobs = view.jobs(
                state: q["state"].map(String.init), task: q["task"].map(String.init), worker: q["worker"].map(String.init),
                text: q["q"].map(String.init), limit: Int(q["limit"] ?? "200") ?? 200)
            return try DashboardResponse.json(jobs)
        }
        group.get("/jobs/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let job = view.job(id) else { return DashboardResponse.text(.notFound, "unknown job\n") }
            return try DashboardResponse.json(job.summary)
        }
        group.get("/workers") { _, _ in
            try DashboardResponse.json(view.workers(now: Date(), offlineAfter: dashboard.offlineAfterSeconds, dropAfter: dashboard.dropAfterSeconds))
        }
        group.get("/queues") { _, _ in try DashboardResponse.json(view.queues) }
        group.get("/stream", use: stream)
        group.post("/jobs", use: submit)
        group.post("/jobs/:id/cancel", use: cancel)
    }

    /// Every change of a job, as server-sent events.
    @Sendable func stream(_ request: Request, context: DashboardContext) -> Response {
        let (subscription, updates) = view.subscribe()
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: .init { [view] writer in
                // A page that went away fails the next write (a ping every 5 s at the latest).
                defer { view.unsubscribe(subscription) }
                try await writer.write(ByteBuffer(string: ": connected\n\n"))
                for await json in updates {
                    try await writer.write(ByteBuffer(string: json == ":" ? ":\n\n" : "data: \(json)\n\n"))
                }
                try await writer.finish(nil)
            })
    }

    /// A job, validated by the worker's own ``JobValidator``, published with a confirm.
    @Sendable func submit(_ request: Request, context: DashboardContext) async throws -> Response {
        guard let user = context.identity else { return DashboardResponse.challenge() }
        let body = try await request.body.collect(upTo: configuration.jobs.maxBodyBytes)
        let bytes = Array(body.readableBytesView)
        let job: JobMessage
        do {
            _ = try JobValidator(configuration: configuration).validate(body: bytes, fallbackID: nil)
            job = try ProtocolCoding.decode(JobMessage.self, from: bytes)
        } catch let rejection as JobRejection {
            return DashboardResponse.text(.badRequest, rejection.message + "\n")
        } catch {
            return DashboardResponse.text(.badRequest, "not a job: \(error)\n")
        }
        pages.submitted(job.id, by: user.name)
        try await follower.send(.submit(job, user: user.name))
        logger.info("dashboard: \(user.name) submitted \(job.id)")
        return try DashboardResponse.json(["id": job.id], status: .accepted)
    }

    /// A cancel, by the job's submitter (through this dashboard) or a `dashboard.admins` user.
    @Sendable func cancel(_ request: Request, context: DashboardContext) async throws -> Response {
        guard let user = context.identity else { return DashboardResponse.challenge() }
        let id = try context.parameters.require("id")
        guard JobValidator.isValidID(id) else { return DashboardResponse.text(.badRequest, "not a job id\n") }
        guard configuration.dashboard.admins.contains(user.name) || pages.submitter(of: id) == user.name else {
            return DashboardResponse.text(.forbidden, "\(user.name) may cancel only the jobs they submitted here (dashboard.admins may cancel any)\n")
        }
        try await follower.send(.cancel(id: id, user: user.name))
        logger.info("dashboard: \(user.name) cancelled \(id)")
        return try DashboardResponse.json(["id": id, "state": "cancelling"], status: .accepted)
    }
}
