import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A very small HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`: one thread,
/// one request per connection, GET only. Enough for Prometheus and Kubernetes probes
/// without pulling a web framework into a GPU worker.
public final class HealthServer: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    private let listener: Int32
    public let port: Int

    /// Binds `address:port` (port 0 picks a free one) and serves `handler(path)` on a thread.
    public init(address: String, port: Int, handler: @escaping @Sendable (String) -> Response) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HealthServerError(message: "socket() failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else {
            close(fd)
            throw HealthServerError(message: "metrics.address '\(address)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw HealthServerError(message: "cannot listen on \(address):\(port): \(String(cString: strerror(errno)))")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        Thread.detachNewThread { [listener] in Self.serve(listener, handler) }
    }

    private static func serve(_ listener: Int32, _ handler: @Sendable (String) -> Response) {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(client, &buffer, buffer.count)
            var response = Response(status: 400, body: "bad request\n")
            if n > 0 {
                let request = String(decoding: buffer[0..<n], as: UTF8.self)
                let parts = request.split(separator: " ", maxSplits: 2)
                if parts.count >= 2, parts[0] == "GET" {
                    response = handler(String(parts[1].split(separator: "?").first ?? ""))
                } else {
                    response = Response(status: 405, body: "GET only\n")
                }
            }
            let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][response.status] ?? "Status"
            let body = Array(response.body.utf8)
            let head = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let bytes = Array(head.utf8) + body
            var sent = 0
            while sent < bytes.count {
                let w = bytes[sent...].withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                if w <= 0 { break }
                sent += w
            }
            close(client)
        }
    }
}

struct HealthServerError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
