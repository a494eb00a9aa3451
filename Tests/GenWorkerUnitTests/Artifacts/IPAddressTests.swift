import Glibc
import XCTest

@testable import GenWorkerCore

/// Address text to bytes and back, checked against the C library's `inet_pton`, and CIDR blocks.
final class IPAddressTests: XCTestCase {
    private let validIPv4: [(String, [UInt8])] = [
        ("0.0.0.0", [0, 0, 0, 0]), ("127.0.0.1", [127, 0, 0, 1]), ("255.255.255.255", [255, 255, 255, 255]),
        ("10.20.30.40", [10, 20, 30, 40]), ("172.16.0.0", [172, 16, 0, 0]),
    ]
    private let validIPv6: [(String, String)] = [
        ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("2001:DB8::1", "2001:db8::1"), ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("fe80::1:2", "fe80::1:2"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"), ("::127.0.0.2", "::7f00:2"), ("64:ff9b::10.0.0.1", "64:ff9b::a00:1"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"), ("fd00:ec2::254", "fd00:ec2::254"), ("[::1]", "::1"),
        ("0:0:1:0:0:0:0:0", "0:0:1::"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ]
    private let invalid = [
        "", " ", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-4", "01.2.3.4", "1.2.3.04", "0177.0.0.1", "0x7f.0.0.1", "2130706433",
        "1.2.3.4 ", " 1.2.3.4", "1..3.4", "1.2.3.", "+1.2.3.4", "1.2.3.4/8", "localhost", "example.com", ":::", "1::2::3", "12345::",
        "g::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "::1%eth0", "fe80::1%1", "1.2.3.4::",
        "::ffff:1.2.3", "::ffff:1.2.3.256", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", "[::1", "::1]", "１.２.３.４", "::ｆ",
    ]

    func testParsingAgreesWithInetPton() throws {
        for (text, bytes) in validIPv4 {
            XCTAssertEqual(IPAddress(text)?.bytes, bytes, text)
            XCTAssertEqual(inetPton(text), bytes, text)
        }
        for (text, _) in validIPv6 {
            let address = try XCTUnwrap(IPAddress(text), text)
            XCTAssertEqual(address.bytes.count, 16, text)
            if !text.hasPrefix("[") { XCTAssertEqual(inetPton(text), address.bytes, text) }
        }
        for text in invalid {
            XCTAssertNil(IPAddress(text), text)
            if !text.hasPrefix("["), !text.hasSuffix("]") { XCTAssertNil(inetPton(text), "inet_pton agrees: \(text)") }
        }
    }

    func testIPv6PrintsInItsShortestForm() throws {
        for (text, printed) in validIPv6 { XCTAssertEqual(try XCTUnwrap(IPAddress(text)).description, printed, text) }
        for (text, _) in validIPv4 { XCTAssertEqual(IPAddress(text)?.description, text) }
        XCTAssertNil(IPAddress(bytes: [1, 2, 3]))
        XCTAssertEqual(IPAddress(bytes: [192, 0, 2, 1])?.description, "192.0.2.1")
    }

    func testTheIPv4AddressAnIPv6AddressCarries() {
        let cases: [(String, String?)] = [
            ("::ffff:127.0.0.1", "127.0.0.1"), ("::ffff:a9fe:a9fe", "169.254.169.254"), ("::10.0.0.1", "10.0.0.1"), ("::0.0.0.2", "0.0.0.2"),
            ("64:ff9b::192.168.1.1", "192.168.1.1"), ("2002:c0a8:101::1", "192.168.1.1"), ("::", nil), ("::1", nil),
            ("2001:db8::1", nil), ("64:ff9b:1::10.0.0.1", nil), ("::fffe:127.0.0.1", nil), ("127.0.0.1", nil),
        ]
        for (text, carried) in cases { XCTAssertEqual(IPAddress(text)?.embeddedIPv4?.description, carried, text) }
    }

    func testNetworksParseAndContainTheirAddressesOnly() throws {
        let cases: [(String, [String], [String])] = [
            ("10.1.0.0/16", ["10.1.0.0", "10.1.255.255", "10.1.2.3"], ["10.0.255.255", "10.2.0.0", "::ffff:10.1.2.3"]),
            ("172.16.0.0/12", ["172.16.0.0", "172.31.255.255"], ["172.15.255.255", "172.32.0.0"]),
            ("fd00::/8", ["fd00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fd12::1"], ["fc00::", "fe00::", "13.0.0.1"]),
            ("192.0.2.7", ["192.0.2.7"], ["192.0.2.6", "192.0.2.8"]), ("::1", ["::1"], ["::", "::2", "127.0.0.1"]),
            ("0.0.0.0/0", ["1.2.3.4", "255.255.255.255"], ["::1"]), ("::/0", ["::1", "2001:db8::"], ["1.2.3.4"]),
            ("100.64.0.0/10", ["100.64.0.0", "100.127.255.255"], ["100.63.255.255", "100.128.0.0"]),
        ]
        for (text, inside, outside) in cases {
            let network = try XCTUnwrap(IPNetwork(text), text)
            for address in inside { XCTAssertTrue(network.contains(try XCTUnwrap(IPAddress(address))), "\(address) in \(text)") }
            for address in outside { XCTAssertFalse(network.contains(try XCTUnwrap(IPAddress(address))), "\(address) not in \(text)") }
        }
        XCTAssertEqual(IPNetwork("192.0.2.7")?.description, "192.0.2.7/32")
        XCTAssertEqual(IPNetwork("2001:DB8::/32")?.description, "2001:db8::/32")
        for text in [
            "10.1.2.3/16", "fd00::1/8", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/ 8", "10.0.0.0/08x", "/8", "host/8",
            "10.0.0.0/8/8",
        ] {
            XCTAssertNil(IPNetwork(text), text)
        }
    }

    /// The C library's reading of `text`, or nil.
    private func inetPton(_ text: String) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let family = text.contains(":") ? AF_INET6 : AF_INET
        guard inet_pton(family, text, &buffer) == 1 else { return nil }
        return Array(buffer.prefix(family == AF_INET ? 4 : 16))
    }
}
