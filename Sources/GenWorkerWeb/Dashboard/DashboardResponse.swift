import Foundation
import GenWorkerCore
import Hummingbird

/// The dashboard's responses: plain text, HTML, JSON, redirects, the basic-auth challenge.
enum DashboardResponse {
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
