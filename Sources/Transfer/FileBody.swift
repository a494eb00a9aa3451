import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

/// A byte range of a file, read in 1 MiB chunks as a request body: a video is never in
/// memory whole. Each iteration opens the file anew, so a retried request can send it again.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let offset: Int64
    let length: Int64
    static let chunk = 1 << 20

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        var left: Int64

        mutating func next() async throws -> ByteBuffer? {
            guard left > 0, let handle else { return nil }
            let data = try handle.read(upToCount: Int(Swift.min(left, Int64(FileChunks.chunk)))) ?? Data()
            guard !data.isEmpty else { throw TransferError(.file, "the file ended \(left) bytes early") }
            left -= Int64(data.count)
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        let handle = FileHandle(forReadingAtPath: path)
        try? handle?.seek(toOffset: UInt64(offset))
        return AsyncIterator(handle: handle, left: length)
    }

    var body: HTTPClientRequest.Body { .stream(self, length: .known(length)) }
}

/// A file's size and SHA-256, read once in chunks.
struct FileDigest: Sendable {
    var bytes: Int64
    var sha256: [UInt8]
    var hex: String { sha256.map { String(format: "%02x", $0) }.joined() }

    static func of(_ path: String, offset: Int64 = 0, length: Int64? = nil) throws(TransferError) -> FileDigest {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw TransferError(.file, "cannot read \(path)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        var total: Int64 = 0
        do {
            try handle.seek(toOffset: UInt64(offset))
            while length.map({ total < $0 }) ?? true {
                let want = length.map { Int(min($0 - total, Int64(FileChunks.chunk))) } ?? FileChunks.chunk
                guard let data = try handle.read(upToCount: want), !data.isEmpty else { break }
                hasher.update(data: data)
                total += Int64(data.count)
            }
        } catch { throw TransferError(.file, "cannot read \(path): \(error)") }
        return FileDigest(bytes: total, sha256: Array(hasher.finalize()))
    }
}
