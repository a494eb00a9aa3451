/// Splits a child's output into lines (on `\n` and on tqdm's `\r`) and keeps a bounded
/// tail. Memory stays bounded however much the child writes: a line longer than
/// `maxLineBytes` is cut, and only the last `maxLines` lines are kept.
package struct LogTail {
    package let maxLines: Int
    package let maxLineBytes: Int
    package private(set) var lines: [String] = []
    private var partial: [UInt8] = []
    private var partialOverflowed = false

    package init(maxLines: Int, maxLineBytes: Int = 2048) {
        self.maxLines = maxLines
        self.maxLineBytes = maxLineBytes
    }

    /// Feeds bytes; calls `onLine` for every complete, non-empty line.
    package mutating func append(_ bytes: UnsafeRawBufferPointer, onLine: (String) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                flush(onLine: onLine)
            } else if partial.count < maxLineBytes {
                partial.append(byte)
            } else {
                partialOverflowed = true
            }
        }
    }

    /// Ends the current partial line, if any.
    package mutating func flush(onLine: (String) -> Void) {
        defer {
            partial.removeAll(keepingCapacity: true)
            partialOverflowed = false
        }
        guard !partial.isEmpty else { return }
        var line = String(decoding: partial, as: UTF8.self)
        if partialOverflowed { line += " […]" }
        onLine(line)
        lines.append(line)
        if lines.count > maxLines { lines.removeFirst(lines.count - maxLines) }
    }
}
