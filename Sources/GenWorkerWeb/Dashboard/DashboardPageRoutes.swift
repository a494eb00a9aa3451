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
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        // A player seeks with Range requests: one range is answered, anything else gets the whole file.
        switch ByteRange.parse(request.headers[.range], size: size) {
        case .whole:
            let body = try await files.loadFile(path: path, context: context)
            return Response(status: .ok, headers: [.contentType: "video/mp4", .acceptRanges: "bytes"], body: body)
        case .part(let range):
            let body = try await files.loadFile(path: path, range: range, context: context)
            return Response(
                status: .partialContent,
                headers: [
                    .contentType: "video/mp4", .acceptRanges: "bytes", .contentRange: "bytes \(range.lowerBound)-\(range.upperBound)/\(size)",
                ], body: body)
        case .unsatisfiable:
            return Response(status: .rangeNotSatisfiable, headers: [.contentRange: "bytes */\(size)"])
        }
    }
}

/// A `Range` request header (RFC 9110 §14): one `bytes=` range, as a player sends to seek.
package enum ByteRange: Equatable {
    /// No range, several ranges, or another unit: the whole file, 200.
    case whole
    /// 206 with these bytes (inclusive).
    case part(ClosedRange<Int>)
    /// 416: the range starts past the end.
    case unsatisfiable

    package static func parse(_ header: String?, size: Int) -> ByteRange {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .whole }
        if parts[0].isEmpty {  // the last N bytes
            guard let suffix = Int(parts[1]), suffix > 0 else { return .whole }
            return size == 0 ? .unsatisfiable : .part(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int(parts[0]), start >= 0 else { return .whole }
        guard start < size else { return .unsatisfiable }
        if parts[1].isEmpty { return .part(start...(size - 1)) }
        guard let end = Int(parts[1]), end >= start else { return .whole }
        return .part(start...min(end, size - 1))
    }
}
