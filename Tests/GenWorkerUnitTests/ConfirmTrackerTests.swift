import XCTest

@testable import AMQPTypes

/// The publisher-confirm bookkeeping of `AMQPConnection`, without a broker: sequence numbers,
/// single and `multiple` acks and nacks in any order, duplicates, claims, bounded memory.
final class ConfirmTrackerTests: XCTestCase {
    private func tracker(publishing count: Int, retention: Int = 4096) -> ConfirmTracker {
        var tracker = ConfirmTracker(retention: retention)
        for _ in 0..<count { _ = tracker.published() }
        return tracker
    }

    /// Each sequence's state, 1...upTo: "a" acked, "n" nacked, "." outstanding, "-" neither.
    private func states(_ tracker: ConfirmTracker, upTo last: UInt64) -> String {
        String(
            (1...last).map { sequence -> Character in
                switch (tracker.outcome(of: sequence), tracker.isOutstanding(sequence)) {
                case (.ack?, false): return "a"
                case (.nack?, false): return "n"
                case (nil, true): return "."
                case (nil, false): return "-"
                case (_?, true): return "!"  // settled and outstanding at once: never
                }
            })
    }

    func testSequenceNumbersStartAtOneAndFollowThePublishes() {
        var tracker = ConfirmTracker()
        XCTAssertEqual((0..<5).map { _ in tracker.published() }, [1, 2, 3, 4, 5])
        XCTAssertEqual(tracker.nextSequence, 6)
        XCTAssertEqual(tracker.outstandingCount, 5)
        XCTAssertEqual(states(tracker, upTo: 6), ".....-")
    }

    func testSingleAcksSettleOnlyTheirOwnPublish() {
        var tracker = tracker(publishing: 4)
        tracker.received(.ack, deliveryTag: 2, multiple: false)
        XCTAssertEqual(states(tracker, upTo: 4), ".a..")
        tracker.received(.ack, deliveryTag: 4, multiple: false)
        XCTAssertEqual(states(tracker, upTo: 4), ".a.a")
        XCTAssertEqual(tracker.outstandingCount, 2)
    }

    func testAMultipleAckSettlesEveryOutstandingPublishUpToItsTag() {
        var tracker = tracker(publishing: 6)
        tracker.received(.ack, deliveryTag: 4, multiple: true)
        XCTAssertEqual(states(tracker, upTo: 6), "aaaa..")
        tracker.received(.ack, deliveryTag: 6, multiple: true)
        XCTAssertEqual(states(tracker, upTo: 6), "aaaaaa")
        XCTAssertEqual(tracker.outstandingCount, 0)
    }

    func testANackAmongAcksKeepsItsOutcome() {
        var tracker = tracker(publishing: 5)
        tracker.received(.ack, deliveryTag: 1, multiple: false)
        tracker.received(.nack, deliveryTag: 3, multiple: false)
        // The later multiple ack covers what is still outstanding, not the nacked 3.
        tracker.received(.ack, deliveryTag: 5, multiple: true)
        XCTAssertEqual(states(tracker, upTo: 5), "aanaa")
        XCTAssertEqual(tracker.claim(3), .nack)
        XCTAssertEqual(tracker.claim(4), .ack)
    }

    func testAcksArrivingOutOfOrder() {
        var tracker = tracker(publishing: 7)
        for tag: UInt64 in [4, 2, 7, 1] { tracker.received(.ack, deliveryTag: tag, multiple: false) }
        XCTAssertEqual(states(tracker, upTo: 7), "aa.a..a")
        // A multiple ack across the holes settles only what was still outstanding below it.
        tracker.received(.nack, deliveryTag: 5, multiple: true)
        XCTAssertEqual(states(tracker, upTo: 7), "aanan.a")
        tracker.received(.ack, deliveryTag: 6, multiple: false)
        XCTAssertEqual(states(tracker, upTo: 7), "aananaa")
        XCTAssertEqual(tracker.outstandingCount, 0)
    }

    func testAMultipleNackSettlesEveryOutstandingPublishUpToItsTagAsRefused() {
        var tracker = tracker(publishing: 5)
        tracker.received(.ack, deliveryTag: 1, multiple: false)
        tracker.received(.nack, deliveryTag: 4, multiple: true)
        XCTAssertEqual(states(tracker, upTo: 5), "annn.")
        XCTAssertEqual(tracker.claim(2), .nack)
        XCTAssertEqual(tracker.claim(1), .ack)
    }

    func testADuplicateOrUnknownTagChangesNothing() {
        var tracker = tracker(publishing: 4)
        tracker.received(.ack, deliveryTag: 2, multiple: true)
        XCTAssertEqual(tracker.claim(1), .ack)
        let before = tracker
        // Below anything outstanding (3 is the lowest): settled already, claimed already.
        tracker.received(.nack, deliveryTag: 2, multiple: false)
        tracker.received(.nack, deliveryTag: 1, multiple: false)
        tracker.received(.nack, deliveryTag: 2, multiple: true)
        // Never published.
        tracker.received(.ack, deliveryTag: 9, multiple: false)
        tracker.received(.ack, deliveryTag: 0, multiple: true)
        XCTAssertEqual(tracker, before)
        XCTAssertEqual(states(tracker, upTo: 5), "-a..-")
        XCTAssertNil(tracker.claim(1), "a claimed outcome does not come back")
    }

    func testAClaimHandsTheOutcomeOutOnce() {
        var tracker = tracker(publishing: 3)
        XCTAssertNil(tracker.claim(2), "not answered yet")
        tracker.received(.ack, deliveryTag: 3, multiple: true)
        XCTAssertEqual(tracker.claim(2), .ack)
        XCTAssertNil(tracker.claim(2))
        XCTAssertNil(tracker.claim(4), "never published")
        XCTAssertEqual(states(tracker, upTo: 3), "a-a")
    }

    func testMemoryStaysBoundedAfterManyPublishes() {
        // Publish, confirm, claim, one at a time: nothing is left.
        var oneByOne = ConfirmTracker()
        for _ in 0..<100_000 {
            let sequence = oneByOne.published()
            oneByOne.received(.ack, deliveryTag: sequence, multiple: false)
            XCTAssertEqual(oneByOne.claim(sequence), .ack)
        }
        XCTAssertEqual(oneByOne.storedRuns, 0)

        // Pipelined, acked in batches, only the last one waited for: one run of unclaimed acks.
        var pipelined = tracker(publishing: 100_000)
        XCTAssertEqual(pipelined.storedRuns, 1)
        for tag in stride(from: UInt64(100), through: 100_000, by: 100) { pipelined.received(.ack, deliveryTag: tag, multiple: true) }
        XCTAssertEqual(pipelined.claim(100_000), .ack)
        XCTAssertEqual(pipelined.storedRuns, 1)
        XCTAssertEqual(pipelined.outcome(of: 1), .ack)
        XCTAssertEqual(pipelined.outcome(of: 99_999), .ack)

        // Acked one by one, never claimed: still one run.
        var unclaimed = tracker(publishing: 100_000)
        for tag in UInt64(1)...100_000 { unclaimed.received(.ack, deliveryTag: tag, multiple: false) }
        XCTAssertEqual(unclaimed.storedRuns, 1)

        // The worst case, acks and nacks alternating and never claimed: at most `retention`
        // runs; the oldest are forgotten, the newest kept.
        var alternating = tracker(publishing: 10_000, retention: 64)
        for tag in UInt64(1)...10_000 { alternating.received(tag % 2 == 0 ? .nack : .ack, deliveryTag: tag, multiple: false) }
        XCTAssertEqual(alternating.storedRuns, 64)
        XCTAssertNil(alternating.outcome(of: 1))
        XCTAssertNil(alternating.outcome(of: 9_936))
        XCTAssertEqual(alternating.outcome(of: 9_937), .ack)
        XCTAssertEqual(alternating.outcome(of: 10_000), .nack)
        XCTAssertEqual(alternating.outstandingCount, 0)
    }

    func testAcksOutOfOrderMergeBackIntoOneRun() {
        var tracker = tracker(publishing: 9)
        for tag: UInt64 in [5, 3, 7, 1, 9, 2, 8, 4, 6] { tracker.received(.ack, deliveryTag: tag, multiple: false) }
        XCTAssertEqual(states(tracker, upTo: 9), "aaaaaaaaa")
        XCTAssertEqual(tracker.storedRuns, 1)
        XCTAssertEqual(tracker.claim(5), .ack)
        XCTAssertEqual(tracker.storedRuns, 2, "a claim in the middle splits the run")
        XCTAssertEqual(states(tracker, upTo: 9), "aaaa-aaaa")
    }
}
