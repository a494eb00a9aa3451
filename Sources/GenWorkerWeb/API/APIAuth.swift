import Foundation
import GenWorkerCore
import Hummingbird

/// Who is calling the HTTP API: an `api.tokens` token (bearer) or a dashboard user (basic
/// auth, checked by the router's `BasicAuthenticator`; `dashboard.admins` are admins, other
/// users may submit and cancel their own jobs).
struct APIPrincipal: Sendable, Equatable {
    typealias Role = WorkerConfiguration.APISection.Role
    let name: String
    let role: Role

    var maySubmit: Bool { role == .submit || role == .admin }
}

/// Reads the caller from a request: nil with no credentials; throws a 401 for credentials
/// that match nothing (a wrong token must never read as "anonymous").
struct APIAuthenticator: Sendable {
    private let tokens: [(name: String, role: APIPrincipal.Role, sha256: [UInt8])]
    private let admins: Set<String>

    init(configuration: WorkerConfiguration) {
        tokens = configuration.api.tokenRoles.sorted { $0.key < $1.key }.map { ($0.key, $0.value.role, Array($0.value.sha256.utf8)) }
        admins = Set(configuration.dashboard.admins)
    }

    func principal(_ request: Request, identity: DashboardUser?) throws(APIError) -> APIPrincipal? {
        guard let header = request.headers[.authorization] else { return nil }
        if header.count > 7, header.prefix(7).lowercased() == "bearer " {
            let presented = Array(SigV4Signer.sha256Hex(Array(header.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)).utf8)
            // Every token compared in full: the time taken says nothing of which one matched.
            var found: APIPrincipal?
            for token in tokens where Self.equal(token.sha256, presented) { found = APIPrincipal(name: token.name, role: token.role) }
            guard let found else { throw APIError(.unauthorized, "the bearer token matches no api.tokens entry") }
            return found
        }
        guard let identity else { throw APIError(.unauthorized, "the credentials match no dashboard user") }
        return APIPrincipal(name: identity.name, role: admins.contains(identity.name) ? .admin : .submit)
    }

    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Browser sessions (basic auth, sent by the browser on its own) may change state only from
/// the server's own origin or `api.allowed_origins`: a page elsewhere cannot submit or cancel
/// in a signed-in user's name (CSRF). Requests with a bearer token (never sent on its own)
/// and requests without an `Origin` (not from a browser) pass.
struct OriginCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowed: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard [.post, .put, .patch, .delete].contains(request.method), let origin = request.headers[.origin],
            !(request.headers[.authorization]?.lowercased().hasPrefix("bearer ") ?? false)
        else { return try await next(request, context) }
        let host = request.head.authority ?? ""
        let own = ["http://\(host)", "https://\(host)"]
        guard own.contains(origin) || allowed.contains(origin) else {
            return APIError(.forbidden, "a state-changing request from origin \(origin) (not this server's, not in api.allowed_origins)").response
        }
        return try await next(request, context)
    }
}

/// An API error as the OpenAPI document's `Error`: `{"error": {"code", "message"}}`.
struct APIError: Error, Sendable {
    enum Code: String, Sendable {
        case badRequest = "bad_request"
        case unauthorized
        case forbidden
        case notFound = "not_found"
        case methodNotAllowed = "method_not_allowed"
        case tooLarge = "too_large"
        case unavailable
        case `internal`
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var status: HTTPResponse.Status {
        switch code {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .tooLarge: .contentTooLarge
        case .unavailable: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    var response: Response {
        let body = (try? ProtocolCoding.encode(["error": ["code": code.rawValue, "message": message]])) ?? []
        var headers: HTTPFields = [.contentType: "application/json"]
        if code == .unauthorized { headers[.wwwAuthenticate] = #"Bearer realm="genworker""# }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
