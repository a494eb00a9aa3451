import Foundation

/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, parsed from text without the resolver:
/// dotted-quad IPv4 with no leading zeros (so `0177.0.0.1` is not quietly octal), IPv6 in any
/// RFC 4291 text form, with a trailing dotted quad or `::`, without a zone (`%eth0`).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// Network order: 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Nil unless `text` is a whole IPv4 or IPv6 address; brackets (`[::1]`) are accepted.
    public init?(_ text: String) {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        guard let bytes = text.contains(":") ? Self.parseIPv6(text) : Self.parseIPv4(text) else { return nil }
        self.bytes = bytes
    }

    /// The IPv4 address this IPv6 address carries for routing to IPv4, if it is one that
    /// does: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated),
    /// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`). Such an address reaches the
    /// IPv4 host, so it is judged as that host.
    public var embeddedIPv4: IPAddress? {
        guard bytes.count == 16 else { return nil }
        let zeros = bytes[0..<10].allSatisfy { $0 == 0 }
        if zeros, bytes[10] == 0xFF, bytes[11] == 0xFF { return IPAddress(bytes: Array(bytes[12...])) }
        // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4 ones.
        if zeros, bytes[10] == 0, bytes[11] == 0, bytes[12..<15].contains(where: { $0 != 0 }) || bytes[15] > 1 {
            return IPAddress(bytes: Array(bytes[12...]))
        }
        if bytes[0..<12] == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0] { return IPAddress(bytes: Array(bytes[12...])) }
        if bytes[0] == 0x20, bytes[1] == 0x02 { return IPAddress(bytes: Array(bytes[2..<6])) }
        return nil
    }

    /// Dotted quad for IPv4; for IPv6 lowercase hex groups, the longest run of two or more
    /// zero groups as `::` (RFC 5952).
    public var description: String {
        if isIPv4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]) }
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > best.length { best = (index, end - index) }
            index = end == index ? index + 1 : end
        }
        let hex = { (range: Range<Int>) in groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard best.length >= 2 else { return hex(0..<8) }
        return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                part.count == 1 || part.first != "0", let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    static func parseIPv6(_ text: Substring) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        // Each half is groups of 1 to 4 hex digits; the very last group may be a dotted quad.
        func groups(_ half: String, mayEndInIPv4: Bool) -> [UInt8]? {
            if half.isEmpty { return [] }
            let parts = half.split(separator: ":", omittingEmptySubsequences: false)
            var bytes: [UInt8] = []
            for (index, part) in parts.enumerated() {
                if mayEndInIPv4, index == parts.count - 1, part.contains(".") {
                    guard let quad = parseIPv4(part) else { return nil }
                    bytes += quad
                } else {
                    guard (1...4).contains(part.count), part.allSatisfy(\.isHexDigit), let value = UInt16(part, radix: 16) else { return nil }
                    bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
                }
            }
            return bytes
        }
        guard let head = groups(halves[0], mayEndInIPv4: halves.count == 1) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1], mayEndInIPv4: true), head.count + tail.count <= 14 else { return nil }
        return head + Array(repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// A block of addresses in CIDR notation (`10.1.0.0/16`, `fd00::/8`); a single address is
/// its own /32 or /128.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Nil when `address` has bits set past `prefixLength` (`10.1.2.3/16`): such an entry is
    /// usually a typo, and silently widening it would allow more than was meant.
    public init?(address: IPAddress, prefixLength: Int) {
        guard (0...address.bytes.count * 8).contains(prefixLength), Self.masked(address.bytes, prefixLength) == address.bytes else {
            return nil
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        guard parts.count == 2 else {
            self.init(address: address, prefixLength: address.bytes.count * 8)
            return
        }
        guard (1...3).contains(parts[1].count), parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber),
            let length = Int(parts[1])
        else { return nil }
        self.init(address: address, prefixLength: length)
    }

    /// Same family and the same first `prefixLength` bits.
    public func contains(_ other: IPAddress) -> Bool {
        other.bytes.count == address.bytes.count && Self.masked(other.bytes, prefixLength) == address.bytes
    }

    public var description: String { "\(address)/\(prefixLength)" }

    static func masked(_ bytes: [UInt8], _ prefixLength: Int) -> [UInt8] {
        bytes.indices.map { index in
            let bits = min(max(prefixLength - index * 8, 0), 8)
            return bits == 8 ? bytes[index] : bytes[index] & ~(0xFF >> bits)
        }
    }
}
