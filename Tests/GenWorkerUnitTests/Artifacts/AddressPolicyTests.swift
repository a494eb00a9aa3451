import Foundation
import XCTest

@testable import GenWorkerCore

/// SSRF decisions: every special range at its edges, addresses that carry an IPv4 address,
/// the allow-list, the broker's endpoints, schemes and hosts that are not what they seem.
final class AddressPolicyTests: XCTestCase {
    /// Each address and the range that refuses it (by name), nil for allowed.
    private let addressTable: [(String, String?)] = [
        ("0.0.0.0", "unspecified"), ("0.255.255.255", "unspecified"), ("1.0.0.0", nil), ("8.8.8.8", nil),
        ("9.255.255.255", nil), ("10.0.0.0", "private"), ("10.255.255.255", "private"), ("11.0.0.0", nil),
        ("100.63.255.255", nil), ("100.64.0.0", "carrier-grade NAT"), ("100.127.255.255", "carrier-grade NAT"), ("100.128.0.0", nil),
        ("100.100.100.200", "cloud metadata"), ("126.255.255.255", nil), ("127.0.0.0", "loopback"), ("127.0.0.1", "loopback"),
        ("127.255.255.255", "loopback"), ("128.0.0.0", nil), ("169.253.255.255", nil), ("169.254.0.0", "link-local"),
        ("169.254.169.254", "cloud metadata"), ("169.254.169.253", "link-local"), ("169.254.255.255", "link-local"), ("169.255.0.0", nil),
        ("172.15.255.255", nil), ("172.16.0.0", "private"), ("172.31.255.255", "private"), ("172.32.0.0", nil),
        ("192.0.0.192", "reserved (IETF protocol assignments)"), ("192.0.1.0", nil), ("192.0.2.1", "reserved (documentation)"),
        ("192.167.255.255", nil), ("192.168.0.0", "private"), ("192.168.255.255", "private"), ("192.169.0.0", nil),
        ("198.17.255.255", nil), ("198.18.0.0", "reserved (benchmarking)"), ("198.19.255.255", "reserved (benchmarking)"), ("198.20.0.0", nil),
        ("198.51.100.7", "reserved (documentation)"), ("203.0.113.255", "reserved (documentation)"), ("223.255.255.255", nil),
        ("224.0.0.0", "multicast"), ("239.255.255.255", "multicast"), ("240.0.0.0", "reserved"), ("255.255.255.254", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("::", "unspecified"), ("::1", "loopback"), ("::2", "unspecified"), ("fe80::", "link-local"), ("fe80::1", "link-local"),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"), ("fec0::1", "site-local (deprecated)"), ("fbff:ffff::", nil),
        ("fc00::", "private"), ("fd12:3456::1", "private"), ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"),
        ("fd00:ec2::254", "cloud metadata"), ("fd00:ec2::253", "private"), ("ff02::1", "multicast"), ("ff00::", "multicast"),
        ("2001:db8::1", "reserved (documentation)"), ("100::1", "reserved (discard-only)"), ("64:ff9b:1::1", "local-use NAT64"),
        ("2606:4700:4700::1111", nil), ("2001:4860:4860::8888", nil), ("2a00:1450:4001::200e", nil),
        // IPv6 addresses that reach an IPv4 host are judged as that host.
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "cloud metadata"), ("::ffff:10.0.0.1", "private"),
        ("::ffff:8.8.8.8", nil), ("::ffff:0.0.0.0", "unspecified"), ("::127.0.0.1", "loopback"), ("::192.168.0.1", "private"),
        ("64:ff9b::127.0.0.1", "loopback"), ("64:ff9b::a9fe:a9fe", "cloud metadata"), ("64:ff9b::8.8.8.8", nil),
        ("2002:a00:1::", "private"), ("2002:7f00:1::1", "loopback"), ("2002:808:808::", nil),
    ]

    func testEveryRangeAtItsEdges() throws {
        let policy = AddressPolicy()
        for (text, range) in addressTable {
            let address = try XCTUnwrap(IPAddress(text), text)
            switch policy.decide(address: address) {
            case .allowed: XCTAssertNil(range, "\(text) should be refused as \(range ?? "")")
            case .refused(.specialRange(_, _, let refusedRange)): XCTAssertEqual(refusedRange.name, range, text)
            case .refused(let other): XCTFail("\(text): \(other)")
            }
        }
    }

    func testEveryListedRangeIsReachedByTheTable() {
        let reached = Set(addressTable.compactMap { IPAddress($0.0).flatMap { AddressPolicy.specialRange(containing: $0.embeddedIPv4 ?? $0) } })
        for range in AddressPolicy.specialRanges { XCTAssertTrue(reached.contains(range), "no test address in \(range)") }
    }

    func testRefusalsNameTheAddressAndTheRange() throws {
        let policy = AddressPolicy()
        let cases = [
            ("169.254.169.254", "refused: 169.254.169.254 is cloud metadata (169.254.169.254/32)"),
            ("172.16.0.0", "refused: 172.16.0.0 is private (172.16.0.0/12)"),
            ("::ffff:127.0.0.1", "refused: ::ffff:7f00:1 carries 127.0.0.1, which is loopback (127.0.0.0/8)"),
            ("fe80::1", "refused: fe80::1 is link-local (fe80::/10)"), ("8.8.8.8", "allowed"),
        ]
        for (text, words) in cases { XCTAssertEqual(policy.decide(address: try XCTUnwrap(IPAddress(text))).description, words) }
    }

    func testTheAllowListOverridesRangeRefusals() throws {
        let policy = AddressPolicy(allowList: ["10.1.0.0/16", "fd00::/8", "127.0.0.1"].compactMap(IPNetwork.init))
        let cases: [(String, Bool)] = [
            ("10.1.2.3", true), ("10.1.255.255", true), ("10.2.0.1", false), ("::ffff:10.1.2.3", true), ("64:ff9b::10.1.0.9", true),
            ("fd12::1", true), ("fd00:ec2::254", true), ("fc00::1", false), ("127.0.0.1", true), ("127.0.0.2", false), ("::1", false),
            ("169.254.169.254", false), ("8.8.8.8", true),
        ]
        for (text, allowed) in cases {
            XCTAssertEqual(policy.decide(address: try XCTUnwrap(IPAddress(text))) == .allowed, allowed, text)
        }
    }

    func testTheBrokersEndpointsAreRefusedEvenWhenAllowed() throws {
        let endpoints = ["rabbit.internal:5672", "Rabbit.Internal.:15672", "10.0.0.5:5671", "[fd00::5]:5672"].compactMap(AddressPolicy.Endpoint.init)
        XCTAssertEqual(endpoints.map(\.description), ["rabbit.internal:5672", "rabbit.internal:15672", "10.0.0.5:5671", "[fd00::5]:5672"])
        let policy = AddressPolicy(allowHTTP: true, allowList: ["10.0.0.0/8", "fd00::/8"].compactMap(IPNetwork.init), refusedEndpoints: endpoints)
        let byName: [(String, Bool)] = [
            ("https://rabbit.internal:15672/api/queues", false), ("http://RABBIT.internal.:5672/", false), ("https://rabbit.internal/", true),
            ("https://rabbit.internal:5671/", true), ("https://10.0.0.5:5671/", false), ("https://10.0.0.5/", true),
            ("https://[fd00::5]:5672/", false), ("https://[::ffff:10.0.0.5]:5671/", false),
        ]
        for (text, allowed) in byName { XCTAssertEqual(policy.decide(url: try XCTUnwrap(URL(string: text))) == .allowed, allowed, text) }
        // A name that resolves to the broker's address, on the broker's port.
        let url = try XCTUnwrap(URL(string: "https://storage.internal:5671/bucket/key"))
        XCTAssertEqual(
            policy.decide(url: url, resolvedAddress: "10.0.0.5"), .refused(.refusedEndpoint(try XCTUnwrap(AddressPolicy.Endpoint("10.0.0.5:5671")))))
        XCTAssertEqual(policy.decide(url: url, resolvedAddress: "10.0.0.6"), .allowed)
        XCTAssertEqual(policy.decide(url: try XCTUnwrap(URL(string: "https://storage.internal/k")), resolvedAddress: "10.0.0.5"), .allowed)
        for text in ["rabbit", "rabbit:", "rabbit:0", "rabbit:65536", "::1:5672", ":5672", "rabbit:x"] {
            XCTAssertNil(AddressPolicy.Endpoint(text), text)
        }
    }

    func testOnlyHTTPSAndWhenAllowedHTTP() throws {
        let strict = AddressPolicy()
        let lenient = AddressPolicy(allowHTTP: true)
        let cases: [(String, AddressRefusal?, AddressRefusal?)] = [
            ("https://bucket.example.com/in.png", nil, nil), ("HTTPS://Bucket.Example.com/in.png", nil, nil),
            ("http://bucket.example.com/in.png", .plainHTTP, nil), ("file:///etc/passwd", .scheme("file"), .scheme("file")),
            ("ftp://example.com/x", .scheme("ftp"), .scheme("ftp")), ("gopher://example.com:70/", .scheme("gopher"), .scheme("gopher")),
            ("data:text/plain,hello", .scheme("data"), .scheme("data")), ("s3://bucket/key", .scheme("s3"), .scheme("s3")),
            ("//example.com/x", .scheme(""), .scheme("")), ("https://user:pass@example.com/", .credentialsInURL, .credentialsInURL),
            ("https://example.com@169.254.169.254/", .credentialsInURL, .credentialsInURL), ("https:///path", .missingHost, .missingHost),
        ]
        for (text, byStrict, byLenient) in cases {
            let url = try XCTUnwrap(URL(string: text), text)
            XCTAssertEqual(strict.decide(url: url), byStrict.map { .refused($0) } ?? .allowed, text)
            XCTAssertEqual(lenient.decide(url: url), byLenient.map { .refused($0) } ?? .allowed, text)
        }
    }

    func testHostsThatAreAddressesAreJudgedBeforeResolving() throws {
        let policy = AddressPolicy()
        let cases: [(String, String?)] = [
            ("https://127.0.0.1/", "loopback"), ("https://169.254.169.254/latest/meta-data/", "cloud metadata"), ("https://[::1]:8443/", "loopback"),
            ("https://[::ffff:7f00:1]/", "loopback"), ("https://[fd00:ec2::254]/", "cloud metadata"), ("https://93.184.215.14/", nil),
            ("https://[2606:4700:4700::1111]/", nil),
        ]
        for (text, range) in cases {
            let decision = policy.decide(url: try XCTUnwrap(URL(string: text)))
            guard case .refused(.specialRange(_, _, let refused)) = decision else {
                XCTAssertNil(range, "\(text): \(decision)")
                continue
            }
            XCTAssertEqual(refused.name, range, text)
        }
    }

    func testNumericHostsTheResolverWouldReadAsIPv4AreRefused() throws {
        let policy = AddressPolicy()
        for host in ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "127.0.0.01", "0x7f.0.0.1", "10.0.0.0x1", "1.2.3"] {
            XCTAssertEqual(policy.decide(url: try XCTUnwrap(URL(string: "https://\(host)/x"))), .refused(.numericHost(host)), host)
        }
        for host in ["1password.com", "storage.example.com", "123.example.org", "xn--bcher-kva.example", "bucket.s3.amazonaws.com"] {
            XCTAssertEqual(policy.decide(url: try XCTUnwrap(URL(string: "https://\(host)/x"))), .allowed, host)
        }
    }

    func testANameIsJudgedAgainByEachAddressItResolvesTo() throws {
        let policy = AddressPolicy()
        let url = try XCTUnwrap(URL(string: "https://innocent.example.com/input.png"))
        XCTAssertEqual(policy.decide(url: url), .allowed)
        XCTAssertEqual(policy.decide(url: url, resolvedAddress: "93.184.215.14"), .allowed)
        XCTAssertEqual(policy.decide(url: url, resolvedAddress: "2606:2800:21f:cb07:6820:80da:af6b:8b2c"), .allowed)
        for address in ["127.0.0.1", "169.254.169.254", "10.1.2.3", "::1", "::ffff:192.168.0.1", "fd00:ec2::254"] {
            guard case .refused(.specialRange) = policy.decide(url: url, resolvedAddress: address) else {
                return XCTFail("\(address) should be refused")
            }
        }
        for text in ["", "localhost", "127.0.0.1.", "::1%lo", "1.2.3.4:80", "0x7f.0.0.1"] {
            XCTAssertEqual(policy.decide(url: url, resolvedAddress: text), .refused(.malformedAddress(text)), text)
        }
        let http = try XCTUnwrap(URL(string: "http://innocent.example.com/"))
        XCTAssertEqual(policy.decide(url: http, resolvedAddress: "93.184.215.14"), .refused(.plainHTTP), "the URL's own rules first")
    }
}
