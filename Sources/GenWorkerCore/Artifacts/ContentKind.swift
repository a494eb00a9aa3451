/// What a file is, read from its first bytes rather than from its name or a server's
/// `Content-Type`: an input fetched from a URL may be an HTML error page, or anything else,
/// and should be refused before a generator chokes on it.
public enum ContentKind: String, Sendable, CaseIterable {
    case png, jpeg, webp
    case wav, mp3, flac, ogg, m4a
    case mp4, mov, webm, matroska

    /// How many leading bytes ``sniff(_:)`` needs at most; fewer may leave it unsure.
    public static let prefixLength = 64

    public var role: InputRole {
        switch self {
        case .png, .jpeg, .webp: .image
        case .wav, .mp3, .flac, .ogg, .m4a: .audio
        case .mp4, .mov, .webm, .matroska: .video
        }
    }

    public var mimeType: String {
        switch self {
        case .png: "image/png"
        case .jpeg: "image/jpeg"
        case .webp: "image/webp"
        case .wav: "audio/wav"
        case .mp3: "audio/mpeg"
        case .flac: "audio/flac"
        case .ogg: "audio/ogg"
        case .m4a: "audio/mp4"
        case .mp4: "video/mp4"
        case .mov: "video/quicktime"
        case .webm: "video/webm"
        case .matroska: "video/x-matroska"
        }
    }

    public var fileExtension: String {
        switch self {
        case .jpeg: "jpg"
        case .matroska: "mkv"
        default: rawValue
        }
    }

    /// The kind `prefix` (a file's first bytes, ``prefixLength`` is enough) shows, or nil
    /// when it is none of these.
    public static func sniff(_ prefix: [UInt8]) -> ContentKind? {
        let bytes = Bytes(prefix)
        if bytes.starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.ascii(0, "RIFF"), bytes.ascii(8, "WEBP") { return .webp }
        if bytes.ascii(0, "RIFF") || bytes.ascii(0, "RF64") || bytes.ascii(0, "BW64"), bytes.ascii(8, "WAVE") { return .wav }
        if bytes.ascii(0, "fLaC") { return .flac }
        if bytes.ascii(0, "OggS") { return oggKind(bytes) }
        if bytes.starts([0x1A, 0x45, 0xDF, 0xA3]) { return matroskaKind(bytes) }
        if bytes.ascii(4, "ftyp") { return isoMediaKind(bytes) }
        // QuickTime files from before `ftyp` start with one of these atoms.
        if ["moov", "mdat", "wide", "free", "skip", "pnot"].contains(where: { bytes.ascii(4, $0) }) { return .mov }
        if isMP3(bytes) { return .mp3 }
        return nil
    }

    /// An ID3v2 tag, or an MPEG audio layer III frame header (sync, a valid version,
    /// bitrate and sample rate): ADTS AAC and JPEG share the sync bits but not the layer.
    static func isMP3(_ bytes: Bytes) -> Bool {
        if bytes.ascii(0, "ID3"), let version = bytes[3], (2...4).contains(version) { return true }
        guard let first = bytes[0], let second = bytes[1], let third = bytes[2] else { return false }
        return first == 0xFF && second & 0xE0 == 0xE0 && second & 0x18 != 0x08 && second & 0x06 == 0x02
            && third >> 4 != 0x0F && (third >> 2) & 0x03 != 0x03
    }

    /// Ogg is a container: audio when its first packet starts a Vorbis, Opus, FLAC or Speex
    /// stream; a Theora (video) stream, or one it cannot see, is none of ours.
    static func oggKind(_ bytes: Bytes) -> ContentKind? {
        guard let segments = bytes[26] else { return nil }
        let packet = 27 + Int(segments)
        let audio: [[UInt8]] = [
            [0x01] + Array("vorbis".utf8), Array("OpusHead".utf8), [0x7F] + Array("FLAC".utf8), Array("Speex   ".utf8),
        ]
        return audio.contains { bytes.starts($0, at: packet) } ? .ogg : nil
    }

    /// EBML's `DocType` element (ID 0x4282) names the Matroska flavour.
    static func matroskaKind(_ bytes: Bytes) -> ContentKind? {
        var index = 4
        while index + 2 < bytes.count {
            defer { index += 1 }
            guard bytes[index] == 0x42, bytes[index + 1] == 0x82, let sizeByte = bytes[index + 2] else { continue }
            // A one-byte EBML size: the high bit marks it, the other seven are the length.
            guard sizeByte & 0x80 != 0 else { return nil }
            let start = index + 3
            let length = Int(sizeByte & 0x7F)
            let docType = (start..<start + length).compactMap { bytes[$0] }
            switch String(decoding: docType, as: UTF8.self) {
            case "webm": return .webm
            case "matroska": return .matroska
            default: return nil
            }
        }
        return nil
    }

    /// ISO base media (`ftyp`): the major brand, else the compatible ones, say what it is.
    /// HEIF and AVIF images share the box and are not videos.
    static func isoMediaKind(_ bytes: Bytes) -> ContentKind? {
        guard let major = bytes.fourCC(8) else { return nil }
        let boxSize = (0..<4).reduce(0) { $0 << 8 | Int(bytes[$1] ?? 0) }
        let compatible = stride(from: 16, to: min(boxSize, bytes.count), by: 4).compactMap { bytes.fourCC($0) }
        if ["M4A ", "M4B "].contains(major) { return .m4a }
        if major == "qt  " { return .mov }
        let videoBrand = { (brand: String) in
            brand.hasPrefix("iso") || brand.hasPrefix("3gp") || brand.hasPrefix("3g2") || brand.hasPrefix("M4V")
                || ["mp41", "mp42", "avc1", "dash", "f4v ", "mmp4", "MSNV", "XAVC"].contains(brand)
        }
        if ["heic", "heix", "mif1", "msf1", "avif", "avis"].contains(major) { return nil }
        if compatible.contains("M4A "), !compatible.contains(where: { $0.hasPrefix("M4V") }), videoBrand(major) { return .m4a }
        return videoBrand(major) || compatible.contains(where: videoBrand) ? .mp4 : nil
    }

    /// Bounds-checked reads of the prefix: a short prefix gives nil, never a trap.
    struct Bytes {
        let storage: [UInt8]
        init(_ storage: [UInt8]) { self.storage = storage }
        var count: Int { storage.count }
        subscript(index: Int) -> UInt8? { storage.indices.contains(index) ? storage[index] : nil }

        func starts(_ expected: [UInt8], at offset: Int = 0) -> Bool {
            offset >= 0 && offset + expected.count <= storage.count && Array(storage[offset..<offset + expected.count]) == expected
        }

        func ascii(_ offset: Int, _ text: String) -> Bool { starts(Array(text.utf8), at: offset) }

        /// Four bytes as text (a box type or brand), nil past the end.
        func fourCC(_ offset: Int) -> String? {
            guard offset >= 0, offset + 4 <= storage.count else { return nil }
            return String(decoding: storage[offset..<offset + 4], as: UTF8.self)
        }
    }
}

/// What an input parameter holds, and so which kinds of file it takes.
public enum InputRole: String, Sendable, CaseIterable, Codable {
    case image, audio, video

    public var acceptedKinds: [ContentKind] { ContentKind.allCases.filter { $0.role == self } }

    public func accepts(_ kind: ContentKind) -> Bool { kind.role == self }
}
