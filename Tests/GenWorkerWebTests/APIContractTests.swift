import Foundation
import XCTest
import Yams

@testable import GenWorkerWeb

/// The API's contract document and the pieces of the API that need no server; CI runs
/// schemathesis against the live API with the same document (scripts/test-clients.sh).
final class APIContractTests: XCTestCase {
    func testTheDocumentIsOpenAPI31AndNamesEveryOperationTheRoutesServe() throws {
        let document = try XCTUnwrap(try Yams.load(yaml: OpenAPIDocument.yaml) as? [String: Any])
        XCTAssertEqual(document["openapi"] as? String, "3.1.0")
        let paths = try XCTUnwrap(document["paths"] as? [String: [String: Any]])
        let operations = Set(paths.flatMap { path, methods in methods.keys.map { "\($0.uppercased()) \(path)" } })
        XCTAssertEqual(
            operations,
            [
                "POST /v1/jobs", "GET /v1/jobs", "GET /v1/jobs/{id}", "GET /v1/jobs/{id}/wait", "GET /v1/jobs/{id}/events",
                "POST /v1/jobs/{id}/cancel", "GET /v1/workers", "GET /v1/queues", "GET /v1/demand", "GET /v1/openapi.yaml",
            ])
        // Every $ref resolves.
        let refs = OpenAPIDocument.yaml.matches(of: /\$ref: '#\/components\/([a-z]+)\/([A-Za-z]+)'/).map { ($0.1, $0.2) }
        let components = try XCTUnwrap(document["components"] as? [String: [String: Any]])
        XCTAssertFalse(refs.isEmpty)
        for (kind, name) in refs { XCTAssertNotNil(components[String(kind)]?[String(name)], "#/components/\(kind)/\(name)") }
    }

    func testACursorNamesThePageEndExactlyAndAForgedOneIsABadRequest() throws {
        let date = Date(timeIntervalSince1970: 1_800_000_000.123_456)
        let (back, id) = try Cursor.decode(Cursor.encode(date, "job-7"))
        XCTAssertEqual(back, date)
        XCTAssertEqual(id, "job-7")
        for forged in ["", "not base64!", Data("12|bad id".utf8).base64EncodedString(), Data("x|job".utf8).base64EncodedString()] {
            XCTAssertThrowsError(try Cursor.decode(forged), forged)
        }
    }
}
