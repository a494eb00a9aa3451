import Foundation
import XCTest

@testable import GenWorkerCore

/// Sniffing a file's kind from its first bytes: real magic numbers as byte literals, things
/// that only look alike, truncated prefixes; and, where ffmpeg is installed, tiny real files.
final class ContentKindTests: XCTestCase {
    private func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }
    private let zero4: [UInt8] = [0, 0, 0, 0]

    /// The first page of an Ogg stream (one segment) whose first packet starts with `packet`.
    private func oggPage(_ packet: [UInt8]) -> [UInt8] {
        ascii("OggS") + [0x00, 0x02] + [UInt8](repeating: 0, count: 20) + [0x01, UInt8(packet.count)] + packet
    }

    /// An EBML header naming `docType`, as mkvmerge and ffmpeg write it.
    private func ebml(_ docType: String) -> [UInt8] {
        [0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08]
            + [0x42, 0x82, 0x80 | UInt8(docType.utf8.count)] + ascii(docType) + [0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02]
    }

    /// An `ftyp` box: its size, the major brand, a minor version, the compatible brands.
    private func ftyp(_ major: String, _ compatible: [String]) -> [UInt8] {
        [0, 0, 0, UInt8(16 + 4 * compatible.count)] + ascii("ftyp") + ascii(major) + [0, 0, 2, 0] + compatible.flatMap(ascii)
            + [0, 0, 0, 8] + ascii("free")
    }

    private var samples: [(String, [UInt8], ContentKind?)] {
        [
            ("PNG", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D] + ascii("IHDR"), .png),
            ("JPEG/JFIF", [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + ascii("JFIF") + [0, 1], .jpeg),
            ("JPEG/Exif", [0xFF, 0xD8, 0xFF, 0xE1, 0x2A, 0x5E] + ascii("Exif") + [0, 0], .jpeg),
            ("WebP", ascii("RIFF") + [0x24, 0, 0, 0] + ascii("WEBPVP8 "), .webp),
            ("WAV", ascii("RIFF") + [0x24, 0x08, 0, 0] + ascii("WAVEfmt ") + [0x10, 0, 0, 0, 1, 0], .wav),
            ("RF64 WAV", ascii("RF64") + [0xFF, 0xFF, 0xFF, 0xFF] + ascii("WAVEds64"), .wav),
            ("AVI", ascii("RIFF") + [0x24, 0, 0, 0] + ascii("AVI LIST"), nil),
            ("MP3/ID3v2.3", ascii("ID3") + [0x03, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x76], .mp3),
            ("MP3/ID3v2.4", ascii("ID3") + [0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x23], .mp3),
            ("ID3 of no known version", ascii("ID3") + [0x09, 0x00], nil),
            ("MPEG-1 layer III frame", [0xFF, 0xFB, 0x90, 0x64], .mp3),
            ("MPEG-2 layer III frame", [0xFF, 0xF3, 0x64, 0xC4], .mp3),
            ("MPEG-2.5 layer III frame", [0xFF, 0xE3, 0x18, 0xC4], .mp3),
            ("ADTS AAC", [0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC], nil),
            ("MPEG layer II", [0xFF, 0xFD, 0x90, 0x64], nil),
            ("layer III, bad bitrate", [0xFF, 0xFB, 0xF0, 0x64], nil),
            ("layer III, bad sample rate", [0xFF, 0xFB, 0x9C, 0x64], nil),
            ("layer III, reserved version", [0xFF, 0xEB, 0x90, 0x64], nil),
            ("FLAC", ascii("fLaC") + [0x00, 0x00, 0x00, 0x22], .flac),
            ("Ogg Vorbis", oggPage([0x01] + ascii("vorbis") + [0, 0, 0, 0, 2]), .ogg),
            ("Ogg Opus", oggPage(ascii("OpusHead") + [1, 2]), .ogg),
            ("Ogg FLAC", oggPage([0x7F] + ascii("FLAC") + [1, 0]), .ogg),
            ("Ogg Theora", oggPage([0x80] + ascii("theora") + [3, 2]), nil),
            ("M4A", ftyp("M4A ", ["M4A ", "mp42", "isom", "\0\0\0\0"]), .m4a),
            ("M4B", ftyp("M4B ", ["M4B ", "isom"]), .m4a),
            ("mp42 with an M4A brand", ftyp("mp42", ["M4A ", "mp42", "isom"]), .m4a),
            ("MP4", ftyp("isom", ["isom", "iso2", "avc1", "mp41"]), .mp4),
            ("MP4 v2", ftyp("mp42", ["mp42", "isom"]), .mp4),
            ("M4V", ftyp("M4V ", ["M4V ", "M4A ", "mp42", "isom"]), .mp4),
            ("3GP", ftyp("3gp4", ["3gp4", "isom"]), .mp4),
            ("unknown brand, MP4-compatible", ftyp("abcd", ["isom"]), .mp4),
            ("MOV", ftyp("qt  ", ["qt  "]), .mov),
            ("MOV before ftyp", [0, 0, 0, 0x6C] + ascii("moov") + [0, 0, 0, 0x6C] + ascii("mvhd"), .mov),
            ("HEIC", ftyp("heic", ["mif1", "heic"]), nil),
            ("AVIF", ftyp("avif", ["avif", "mif1", "miaf"]), nil),
            ("unknown ftyp brand", ftyp("abcd", ["efgh"]), nil),
            ("WebM", ebml("webm"), .webm),
            ("Matroska", ebml("matroska"), .matroska),
            ("other EBML", ebml("mystery"), nil),
            ("GIF", ascii("GIF89a") + [1, 0, 1, 0], nil),
            ("HTML", ascii("<!DOCTYPE html><html><body>Not Found"), nil),
            ("JSON", ascii(#"{"error":"AccessDenied"}"#), nil),
            ("XML error", ascii("<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"), nil),
            ("PDF", ascii("%PDF-1.7\n"), nil),
            ("ZIP", [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00], nil),
            ("ELF", [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01], nil),
            ("empty", [], nil),
            ("zeros", [UInt8](repeating: 0, count: 64), nil),
        ]
    }

    func testMagicNumbers() {
        for (name, bytes, kind) in samples { XCTAssertEqual(ContentKind.sniff(bytes), kind, name) }
    }

    func testTruncatedAndArbitraryPrefixesNeverTrap() {
        for (name, bytes, kind) in samples {
            for length in 0...bytes.count { _ = ContentKind.sniff(Array(bytes.prefix(length))) }
            if let kind { XCTAssertEqual(ContentKind.sniff(bytes + [UInt8](repeating: 0xAB, count: 64)), kind, "\(name), longer") }
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<5000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(state % 80) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                bytes.append(UInt8(truncatingIfNeeded: state >> 56))
            }
            // Known leads with random tails reach the deeper parsers.
            let leads = [[0x1A, 0x45, 0xDF, 0xA3], [0, 0, 0, 0xFF] + ascii("ftyp"), ascii("OggS"), [0xFF, 0xFB], ascii("ID3")]
            _ = ContentKind.sniff(bytes)
            _ = ContentKind.sniff(leads[Int(state % 5)] + bytes)
        }
        XCTAssertNil(ContentKind.sniff([0x89, 0x50, 0x4E, 0x47]), "half a PNG signature")
        XCTAssertNil(ContentKind.sniff(ascii("RIFF")), "RIFF without its form type")
        XCTAssertNil(ContentKind.sniff(ascii("OggS")), "no packet yet")
    }

    func testEachRoleAcceptsItsOwnKindsOnly() {
        XCTAssertEqual(InputRole.image.acceptedKinds, [.png, .jpeg, .webp])
        XCTAssertEqual(InputRole.audio.acceptedKinds, [.wav, .mp3, .flac, .ogg, .m4a])
        XCTAssertEqual(InputRole.video.acceptedKinds, [.mp4, .mov, .webm, .matroska])
        for role in InputRole.allCases {
            for kind in ContentKind.allCases { XCTAssertEqual(role.accepts(kind), role.acceptedKinds.contains(kind), "\(role) \(kind)") }
        }
        XCTAssertEqual(Set(InputRole.allCases.flatMap(\.acceptedKinds)).count, ContentKind.allCases.count, "every kind has one role")
        XCTAssertEqual(ContentKind.jpeg.mimeType, "image/jpeg")
        XCTAssertEqual(ContentKind.mp3.mimeType, "audio/mpeg")
        XCTAssertEqual(ContentKind.mov.mimeType, "video/quicktime")
        XCTAssertEqual(
            ContentKind.allCases.map(\.fileExtension), ["png", "jpg", "webp", "wav", "mp3", "flac", "ogg", "m4a", "mp4", "mov", "webm", "mkv"])
    }

    /// Tiny files made by ffmpeg, when it is installed (and has the encoder): the byte
    /// literals above are what real encoders write.
    func testFilesMadeByFFmpeg() throws {
        guard let ffmpeg = ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"].first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("ffmpeg is not installed")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sniff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = ["-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1"]
        let sound = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.2"]
        let clip = ["-f", "lavfi", "-i", "testsrc=size=32x32:rate=5:duration=0.4"]
        let files: [(String, [String], ContentKind)] = [
            ("a.png", image, .png), ("a.jpg", image, .jpeg), ("a.webp", image + ["-c:v", "libwebp"], .webp),
            ("a.wav", sound, .wav), ("a.mp3", sound, .mp3), ("b.mp3", sound + ["-id3v2_version", "0", "-write_xing", "0"], .mp3),
            ("a.flac", sound, .flac), ("a.ogg", sound + ["-c:a", "libvorbis"], .ogg), ("a.opus", sound + ["-c:a", "libopus"], .ogg),
            ("a.m4a", sound + ["-c:a", "aac"], .m4a), ("a.mp4", clip + ["-c:v", "mpeg4"], .mp4), ("a.mov", clip + ["-c:v", "mpeg4"], .mov),
            ("a.webm", clip + ["-c:v", "libvpx"], .webm), ("a.mkv", clip + ["-c:v", "mpeg4"], .matroska),
        ]
        var made = 0
        for (name, arguments, kind) in files {
            let output = directory.appendingPathComponent(name)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ffmpeg)
            process.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + arguments + [output.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            // An ffmpeg built without this encoder proves nothing either way.
            guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: output.path) else { continue }
            made += 1
            XCTAssertEqual(ContentKind.sniff(Array(data.prefix(ContentKind.prefixLength))), kind, name)
        }
        XCTAssertGreaterThan(made, 0, "ffmpeg made none of the files")
    }
}
