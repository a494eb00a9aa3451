import GenWorkerCore
import GenWorkerWeb
import XCTest

/// Dashboard users are bcrypt hashes in the configuration; the hashing is the web side's.
final class DashboardPasswordTests: XCTestCase {
    func testDashboardUsersMustBeBcryptHashes() throws {
        XCTAssertThrowsError(try WorkerConfiguration.parse(yaml: "dashboard:\n  users:\n    alice: plain-text")) { error in
            XCTAssertTrue("\(error)".contains("dashboard.users.alice must be a bcrypt hash"), "\(error)")
            XCTAssertFalse("\(error)".contains("plain-text"), "the password does not appear in the error")
        }
        let hash = DashboardPassword.hash("pw")
        XCTAssertTrue(DashboardPassword.verify("pw", hash: hash))
        XCTAssertFalse(DashboardPassword.verify("other", hash: hash))
        let parsed = try WorkerConfiguration.parse(yaml: "dashboard:\n  users:\n    alice: \"\(hash)\"")
        XCTAssertEqual(parsed.dashboard.users["alice"], hash)
    }
}
