import Foundation
import GenWorker
import GenWorkerCore
import Hummingbird
import Logging
import Synchronization

/// The HTTP API, `/v1` (OpenAPIDocument.swift is its contract): submit (the id is the
/// idempotency key), a job, a page of jobs, a long-poll wait, a job's events (server-sent),
/// cancel (answers with the state it led to), workers, queues. Every answer comes from the
/// ``FleetView`` this process folds from the ledger: one job is a dictionary lookup.
struct APIRoutes {
    let configuration: WorkerConfiguration
    let view: FleetView
    let follower: FleetFollower
    let logger: Logger
    let authenticator: APIAuthenticator

    /// How often a waiting request (wait, cancel, events) looks at its job again.
    static let pollEvery = Duration.milliseconds(25)
    /// Long polls and event streams open at once: past this, a 503 (each looks at the fold every 25 ms).
    let waiters = Gate(limit: 2000)

    init(configuration: WorkerConfiguration, view: FleetView, follower: FleetFollower, logger: Logger) {
        self.configuration = configuration
        self.view = view
        self.follower = follower
        self.logger = logger
        authenticator = APIAuthenticator(configuration: configuration)
    }

    func addRoutes(to group: RouterGroup<DashboardContext>) {
        group.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
        }
        group.post("/jobs") { request, context in await answer { try await submit(request, context) } }
        group.get("/jobs") { request, context in await answer { try list(request, context) } }
        group.get("/jobs/:id") { request, context in
            await answer {
                let caller = try read(request, context)
                let id = try jobID(context)
                guard let job = view.apiJob(id) else { throw APIError(.notFound, "no job \(id) in the ledger's window") }
                return try json(shown(job, to: caller))
            }
        }
        group.get("/jobs/:id/wait") { request, context in await answer { try await wait(request, context) } }
        group.get("/jobs/:id/events") { request, context in await answer { try await events(request, context) } }
        group.post("/jobs/:id/cancel") { request, context in await answer { try await cancel(request, context) } }
        group.get("/workers") { request, context in
            await answer {
                try read(request, context)
                let d = configuration.dashboard
                return try json(["workers": view.workers(now: Date(), offlineAfter: d.offlineAfterSeconds, dropAfter: d.dropAfterSeconds)])
            }
        }
        group.get("/demand") { request, context in
            await answer {
                try read(request, context)
                let d = view.demand(now: Date(), offlineAfter: configuration.dashboard.offlineAfterSeconds)
                return try json(["queued": d.queued, "running": d.running, "demand": d.queued + d.running, "workers": d.workers, "slots": d.slots])
            }
        }
        group.get("/queues") { request, context in
            await answer {
                try read(request, context)
                return try json(["queues": view.queues.sorted { $0.key < $1.key }.map { QueueDepth(name: $0.key, depth: Int($0.value)) }])
            }
        }
    }

    private struct QueueDepth: Encodable {
        var name: String
        var depth: Int
    }

    // MARK: - Handlers

    /// A job message, validated by the worker's own ``JobValidator``; an id already in the
    /// ledger's window answers with that job (200) and publishes nothing.
    private func submit(_ request: Request, _ context: DashboardContext) async throws -> Response {
        guard let caller = try authenticator.principal(request, identity: context.identity) else {
            throw APIError(.unauthorized, "submitting needs a token (api.tokens) or a dashboard user")
        }
        guard caller.maySubmit else { throw APIError(.forbidden, "\(caller.name) has the role \(caller.role.rawValue): it may not submit") }
        let limit = configuration.jobs.maxBodyBytes
        let collected: ByteBuffer
        do {
            collected = try await request.body.collect(upTo: limit)
        } catch {
            throw APIError(.tooLarge, "a job body is at most jobs.max_body_bytes (\(limit)) bytes")
        }
        guard var object = (try? JSONSerialization.jsonObject(with: Data(collected.readableBytesView))) as? [String: Any] else {
            throw APIError(.badRequest, "the body must be a JSON object: the job message (docs/protocol.md)")
        }
        if object["id"] == nil || object["id"] is NSNull { object["id"] = UUID().uuidString.lowercased() }
        let bytes = Array(try JSONSerialization.data(withJSONObject: object))
        let message: JobMessage
        do {
            _ = try JobValidator(configuration: configuration).validate(body: bytes, fallbackID: nil)
            message = try ProtocolCoding.decode(JobMessage.self, from: bytes)
        } catch let rejection as JobRejection {
            throw APIError(.badRequest, rejection.message)
        } catch {
            throw APIError(.badRequest, "not a job message: \(error)")
        }
        if let existing = view.apiJob(message.id) { return try json(shown(existing, to: caller), status: .ok) }
        // The submitter is what the published message says (its header, which the fold reads):
        // nothing is noted before the broker took it, so a refused submit names nobody.
        do {
            try await follower.send(.submit(message, user: caller.name))
        } catch {
            throw APIError(.unavailable, "the broker did not take the job: \(error.message)")
        }
        logger.info("api: \(caller.name) submitted \(message.id)")
        // The ledger's copy of the submission comes back within a few milliseconds: looked for
        // closely for a moment, then the job is what was just published (queued).
        let folded = await poll(for: .milliseconds(50), every: .milliseconds(2)) { view.apiJob(message.id) }
        return try json(shown(folded ?? queued(message, by: caller.name), to: caller), status: .accepted)
    }

    private func list(_ request: Request, _ context: DashboardContext) throws -> Response {
        let caller = try read(request, context)
        // An empty task, submitter or cursor is none (`?task=&cursor=`, as forms send them);
        // an empty state, limit or time is not one.
        let parameters = request.uri.queryParameters
        let q = { (name: String) -> Substring? in
            parameters[Substring(name)].flatMap { $0.isEmpty && ["task", "submitter", "cursor"].contains(name) ? nil : $0 }
        }
        let states = ["queued", "running", "completed", "failed", "cancelled"]
        let state = q("state").map(String.init)
        if let state, !states.contains(state) { throw APIError(.badRequest, "state must be one of \(states.joined(separator: ", "))") }
        guard let limit = Int(q("limit").map(String.init) ?? "100"), (1...1000).contains(limit) else {
            throw APIError(.badRequest, "limit must be an integer from 1 to 1000")
        }
        let since = try q("since").map { try date(String($0), "since") }
        let until = try q("until").map { try date(String($0), "until") }
        let after = try q("cursor").map { try Cursor.decode(String($0)) }
        let page = view.apiJobs(
            state: state, task: q("task").map(String.init), submitter: q("submitter").map(String.init), since: since, until: until, after: after,
            limit: limit)
        let next = page.count == limit ? page.last.map { Cursor.encode($0.submittedAt ?? .distantPast, $0.id) } : nil
        return try json(JobPage(jobs: page.map { shown($0, to: caller) }, nextCursor: next))
    }

    /// A long poll: the job once it ended, or as it is when `timeout_s` has passed.
    private func wait(_ request: Request, _ context: DashboardContext) async throws -> Response {
        let caller = try read(request, context)
        let id = try jobID(context)
        let timeout = try seconds(request, "timeout_s", default: 30)
        // A job submitted through another replica may reach this one's fold a moment later.
        guard let first = await poll(for: .seconds(min(timeout, 1)), { view.apiJob(id) }) else {
            throw APIError(.notFound, "no job \(id) in the ledger's window")
        }
        if first.isTerminal { return try json(shown(first, to: caller)) }
        guard waiters.enter() else { throw APIError(.unavailable, "too many waits and event streams at once: try again") }
        defer { waiters.leave() }
        let ended = await poll(for: .seconds(timeout)) { view.apiJob(id).flatMap { $0.isTerminal ? $0 : nil } }
        return try json(shown(ended ?? view.apiJob(id) ?? first, to: caller))
    }

    /// Server-sent events: the whole job each time it changes (`event: job`, `id:` a hash
    /// of it), `event: end` last. `Last-Event-ID` naming the job as it is skips the first.
    private func events(_ request: Request, _ context: DashboardContext) async throws -> Response {
        let caller = try read(request, context)
        let id = try jobID(context)
        guard view.apiJob(id) != nil else { throw APIError(.notFound, "no job \(id) in the ledger's window") }
        guard waiters.enter() else { throw APIError(.unavailable, "too many waits and event streams at once: try again") }
        let resumeFrom = request.headers.first { $0.name.canonicalName == "last-event-id" }?.value
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: .init { [view, waiters] writer in
                defer { waiters.leave() }
                var last = resumeFrom
                var quietSince = ContinuousClock.now
                var previous: APIJob?
                try await writer.write(ByteBuffer(string: ": \(id)\n\n"))
                while !view.isFinishing, let job = view.apiJob(id).map({ shown($0, to: caller) }) {
                    // Encoded and hashed only when it changed: a stream costs a lookup per turn otherwise.
                    if job == previous, ContinuousClock.now - quietSince <= .seconds(15) {
                        try await Task.sleep(for: Self.pollEvery)
                        continue
                    }
                    previous = job
                    let data = String(decoding: try ProtocolCoding.encode(job), as: UTF8.self)
                    let tag = SigV4Signer.sha256Hex(Array(data.utf8)).prefix(16)
                    if String(tag) != last || job.isTerminal {
                        last = String(tag)
                        quietSince = .now
                        try await writer.write(ByteBuffer(string: "id: \(tag)\nevent: \(job.isTerminal ? "end" : "job")\ndata: \(data)\n\n"))
                        if job.isTerminal { break }
                    } else if ContinuousClock.now - quietSince > .seconds(15) {
                        // A client that went away fails this write; a proxy sees traffic.
                        quietSince = .now
                        try await writer.write(ByteBuffer(string: ":\n\n"))
                    }
                    try await Task.sleep(for: Self.pollEvery)
                }
                try await writer.finish(nil)
            })
    }

    /// A cancel by the job's submitter or an admin; waits up to `wait_s` for the state it led to.
    private func cancel(_ request: Request, _ context: DashboardContext) async throws -> Response {
        guard let caller = try authenticator.principal(request, identity: context.identity) else {
            throw APIError(.unauthorized, "cancelling needs a token (api.tokens) or a dashboard user")
        }
        let id = try jobID(context)
        let waitFor = try seconds(request, "wait_s", default: 10)
        guard let job = view.apiJob(id) else { throw APIError(.notFound, "no job \(id) in the ledger's window") }
        // Only the dashboard user or token that submitted it (the fold's record of who), never
        // a broker account that happens to share the name.
        guard caller.role == .admin || (caller.maySubmit && view.requester(of: id) == caller.name) else {
            throw APIError(.forbidden, "\(caller.name) may cancel only the jobs it submitted (admins: any)")
        }
        if job.isTerminal { return try json(shown(job, to: caller)) }
        do {
            try await follower.send(.cancel(id: id, user: caller.name))
        } catch {
            throw APIError(.unavailable, "the broker did not take the cancel: \(error.message)")
        }
        logger.info("api: \(caller.name) cancelled \(id)")
        let ended = await poll(for: .seconds(waitFor)) { view.apiJob(id).flatMap { $0.isTerminal ? $0 : nil } }
        var now = ended ?? view.apiJob(id) ?? job
        now.cancelRequested = true
        return try json(shown(now, to: caller))
    }

    // MARK: - Helpers

    /// Reads are open unless `api.read_requires_token`; credentials, when given, must be right.
    @discardableResult
    private func read(_ request: Request, _ context: DashboardContext) throws(APIError) -> APIPrincipal? {
        let caller = try authenticator.principal(request, identity: context.identity)
        if caller == nil, configuration.api.readRequiresToken { throw APIError(.unauthorized, "reads need a token (api.read_requires_token)") }
        return caller
    }

    /// A job as `caller` may see it: a stored video's presigned URL (a secret: whoever holds
    /// it downloads the video) and the log tail only for the job's submitter and admins.
    private func shown(_ job: APIJob, to caller: APIPrincipal?) -> APIJob {
        if let caller, caller.role == .admin || caller.name == job.submitter { return job }
        var job = job
        job.result?.outputURL = nil
        job.result?.logTail = nil
        return job
    }

    private func jobID(_ context: DashboardContext) throws -> String {
        let id = try context.parameters.require("id")
        guard JobValidator.isValidID(id) else { throw APIError(.badRequest, "a job id is 1 to 128 letters, digits, '-' or '_'") }
        return id
    }

    private func seconds(_ request: Request, _ name: String, default value: Double) throws(APIError) -> Double {
        guard let text = request.uri.queryParameters[Substring(name)] else { return value }
        guard let seconds = Double(String(text)), seconds.isFinite, (0...60).contains(seconds) else {
            throw APIError(.badRequest, "\(name) must be a number of seconds from 0 to 60")
        }
        return seconds
    }

    private func date(_ text: String, _ name: String) throws(APIError) -> Date {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: text) else {
            throw APIError(.badRequest, "\(name) must be an RFC 3339 time, e.g. 2026-11-30T18:00:00Z")
        }
        return date
    }

    /// What `probe` finds within `duration` (looked for every ``pollEvery``), or nil.
    private func poll<T>(for duration: Duration, every interval: Duration = pollEvery, _ probe: () -> T?) async -> T? {
        let deadline = ContinuousClock.now + duration
        while true {
            if let found = probe() { return found }
            guard ContinuousClock.now < deadline, !view.isFinishing else { return nil }
            try? await Task.sleep(for: interval)
        }
    }

    private func queued(_ message: JobMessage, by name: String) -> APIJob {
        var job = LedgerState.Job(id: message.id, at: Date())
        job.task = message.task
        job.submittedAt = Date()
        return APIJob(job, progress: nil, requestedBy: name)
    }

    private func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        try DashboardResponse.json(value, status: status)
    }

    /// Runs a handler; an ``APIError`` becomes its JSON answer.
    private func answer(_ handler: () async throws -> Response) async -> Response {
        do {
            return try await handler()
        } catch let error as APIError {
            return error.response
        } catch {
            logger.error("api: \(error)")
            return APIError(.internal, "the API could not answer; its log says why").response
        }
    }
}

/// A method the document does not list for an API path is a 405 naming the ones it does.
struct MethodCheck: RouterMiddleware {
    typealias Context = DashboardContext
    /// The methods the document lists for `path`, nil for a path that is not the API's.
    static func allowed(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/")
        guard parts.first == "v1" else { return nil }
        switch (parts.count, parts.dropFirst().first, parts.last) {
        case (2, "jobs", _): return [.get, .post]
        case (2, "workers", _), (2, "queues", _), (2, "demand", _), (2, "openapi.yaml", _): return [.get]
        case (3, "jobs", _): return [.get]
        case (4, "jobs", "wait"), (4, "jobs", "events"): return [.get]
        case (4, "jobs", "cancel"): return [.post]
        default: return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard let allowed = Self.allowed(path), !allowed.contains(request.method), !(request.method == .head && allowed.contains(.get))
        else { return try await next(request, context) }
        var response = APIError(
            .methodNotAllowed, "\(request.method) is not an operation of \(path): \(allowed.map(\.rawValue).joined(separator: ", "))"
        ).response
        response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
        return response
    }
}

/// A page of jobs and where the next one starts.
struct JobPage: Encodable {
    var jobs: [APIJob]
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case jobs
        case nextCursor = "next_cursor"
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobs, forKey: .jobs)
        try c.encode(nextCursor, forKey: .nextCursor)
    }
}

/// A page's end as an opaque string: the last job's submission time (exactly) and id.
enum Cursor {
    static func encode(_ date: Date, _ id: String) -> String {
        Data("\(date.timeIntervalSince1970)|\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) throws(APIError) -> (Date, String) {
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        guard let data = Data(base64Encoded: b64), let plain = String(data: data, encoding: .utf8),
            let bar = plain.firstIndex(of: "|"), let seconds = Double(plain[..<bar]), seconds.isFinite,
            JobValidator.isValidID(String(plain[plain.index(after: bar)...]))
        else { throw APIError(.badRequest, "cursor must be a next_cursor from a previous page") }
        return (Date(timeIntervalSince1970: seconds), String(plain[plain.index(after: bar)...]))
    }
}

/// A bounded number of holders (long polls, event streams).
final class Gate: Sendable {
    private let count = Atomic<Int>(0)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes a place; false when `limit` are taken.
    func enter() -> Bool {
        guard count.add(1, ordering: .relaxed).newValue <= limit else {
            count.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func leave() { count.subtract(1, ordering: .relaxed) }
}
