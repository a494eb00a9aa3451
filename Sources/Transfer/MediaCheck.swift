import Foundation
import GenWorkerCore

/// A fetched input is what its param needs, by its first bytes (``ContentKind``), before
/// any GPU time is spent on it.
enum MediaCheck {
    static func check(file: String, media: InputRole, shown: String) throws(TransferError) {
        guard let handle = FileHandle(forReadingAtPath: file) else { throw TransferError(.file, "cannot read the fetched \(shown)") }
        defer { try? handle.close() }
        let prefix = Array((try? handle.read(upToCount: 64)) ?? Data())
        guard let kind = ContentKind.sniff(prefix) else {
            throw TransferError(.wrongKind, "\(shown) is not \(media == .image ? "an" : "a") \(media.rawValue) file (unknown format)")
        }
        guard media.accepts(kind) else {
            throw TransferError(.wrongKind, "\(shown) is \(kind.rawValue), not \(media == .image ? "an" : "a") \(media.rawValue) file")
        }
    }
}
