import Foundation
import GenWorkerCore
import Hummingbird

/// The dashboard's HTML pages (jobs, a job, workers, queues, submit, sign-in) and the videos.
struct DashboardPageRoutes {
    let pages: Pages
    /// Where the dashboard sees the workers' videos (`dashboard.outputs_dir`), if it does.
    let outputsDir: String?
    let files = FileIO()

    func addRoutes(to group: RouterGroup<DashboardContext>) {
        group.get("/", use: jobs)
        group.get("/jobs") { request, _ -> Response in
            guard let id = request.uri.queryParameters["id"], !id.isEmpty else { return DashboardResponse.redirect("/") }
            return DashboardResponse.redirect("/jobs/\(id)")
        }
        group.get("/jobs/:id", use: job)
        group.get("/workers") { _, _ in DashboardResponse.html(pages.workers()) }
        group.get("/queues") { _, _ in DashboardResponse.html(pages.queues()) }
        group.get("/submit") { _, _ in DashboardResponse.html(pages.submit()) }
        group.get("/login") { _, context -> Response in
            guard context.identity != nil else { return DashboardResponse.challenge() }
            return DashboardResponse.redirect("/")
        }
        group.get("/outputs/:file", use: video)
    }

    @Sendable func jobs(_ request: Request, context: DashboardContext) -> Response {
        let q = request.uri.queryParameters
        return DashboardResponse.html(
            pages.jobs(
                state: q["state"].map(String.init), task: q["task"].map(String.init), worker: q["worker"].map(String.init),
                text: q["q"].map(String.init)))
    }

    @Sendable func job(_ request: Request, context: DashboardContext) throws -> Response {
        let id = try context.parameters.require("id")
        guard let page = pages.job(id) else { return DashboardResponse.text(.notFound, "no job '\(id)' in the ledger's window\n") }
        return DashboardResponse.html(page)
    }

    /// A job's video, streamed from disk in chunks (a video is hundreds of megabytes).
    @Sendable func video(_ request: Request, context: DashboardContext) async throws -> Response {
        let file = try context.parameters.require("file")
        guard let outputsDir, file.hasSuffix(".mp4"), JobValidator.isValidID(String(file.dropLast(4))) else {
            return DashboardResponse.text(.notFound, "no such video\n")
        }
        let path = (outputsDir as NSString).appendingPathComponent(file)
        guard FileManager.default.isReadableFile(atPath: path) else { return DashboardResponse.text(.notFound, "no such video\n") }
        let body = try await files.loadFile(path: path, context: context)
        return Response(status: .ok, headers: [.contentType: "video/mp4"], body: body)
    }
}
