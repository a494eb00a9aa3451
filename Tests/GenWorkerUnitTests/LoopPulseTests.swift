import XCTest

@testable import GenWorkerCore

/// `/healthz`'s judge: a loop quiet for longer than its bound is wedged; a beat heals it.
final class LoopPulseTests: XCTestCase {
    func testALoopQuietPastItsBoundIsStalledUntilItBeatsAgain() {
        let start = ContinuousClock.now
        let pulse = LoopPulse(bound: .seconds(60), now: start)
        XCTAssertNil(pulse.stalled(now: start + .seconds(59)))
        XCTAssertEqual(pulse.stalled(now: start + .seconds(61)), .seconds(61))
        pulse.beat(now: start + .seconds(70))
        XCTAssertNil(pulse.stalled(now: start + .seconds(71)))
    }
}
