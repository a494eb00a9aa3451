import AsyncHTTPClient
import Foundation

/// Writes a response's body to a file as it arrives, refusing more than `maxBytes` (by its
/// `Content-Length` at once, else as the bytes come); a failed write leaves no file behind.
enum ResponseFile {
    static func write(_ response: HTTPClientResponse, to path: String, maxBytes: Int64, shown: String) async throws(TransferError) -> Int64 {
        if let length = response.headers.first(name: "content-length").flatMap(Int64.init), length > maxBytes {
            throw TransferError(.tooLarge, "\(shown) is \(length) bytes; the limit is \(maxBytes) (inputs.max_mb)")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw TransferError(.file, "cannot write \(path)")
        }
        var written: Int64 = 0
        do {
            defer { try? handle.close() }
            for try await chunk in response.body {
                written += Int64(chunk.readableBytes)
                if written > maxBytes {
                    throw TransferError(.tooLarge, "\(shown) is larger than the limit of \(maxBytes) bytes (inputs.max_mb)")
                }
                try handle.write(contentsOf: Data(chunk.readableBytesView))
            }
        } catch {
            unlink(path)
            if let error = error as? TransferError { throw error }
            throw GuardedHTTP.describe(error, url: shown)
        }
        return written
    }
}
