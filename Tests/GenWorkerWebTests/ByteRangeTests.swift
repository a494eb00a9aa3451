import XCTest

@testable import GenWorkerWeb

/// The dashboard's video route answers one `Range` the way players seek (RFC 9110 §14).
final class ByteRangeTests: XCTestCase {
    func testRanges() {
        XCTAssertEqual(ByteRange.parse(nil, size: 1000), .whole)
        XCTAssertEqual(ByteRange.parse("bytes=0-99", size: 1000), .part(0...99))
        XCTAssertEqual(ByteRange.parse("bytes=900-", size: 1000), .part(900...999))
        XCTAssertEqual(ByteRange.parse("bytes=900-5000", size: 1000), .part(900...999), "clamped to the end")
        XCTAssertEqual(ByteRange.parse("bytes=-100", size: 1000), .part(900...999), "the last 100 bytes")
        XCTAssertEqual(ByteRange.parse("bytes=-5000", size: 1000), .part(0...999))
        XCTAssertEqual(ByteRange.parse("bytes=1000-", size: 1000), .unsatisfiable)
        XCTAssertEqual(ByteRange.parse("bytes=0-1,5-9", size: 1000), .whole, "several ranges: the whole file")
        XCTAssertEqual(ByteRange.parse("items=0-1", size: 1000), .whole)
        XCTAssertEqual(ByteRange.parse("bytes=9-3", size: 1000), .whole, "an invalid range is ignored")
        XCTAssertEqual(ByteRange.parse("bytes=x-3", size: 1000), .whole)
    }
}
