import XCTest

@testable import GenWorkerCore
@testable import Supervision

/// The fold is a function of the log: random interleavings of three workers' records give the
/// same decisions folded live, replayed, with record times skewed by a day, and with another
/// `now`; a fold that starts mid-log, after carries and heartbeats, decides later claims as a
/// fold that saw everything does.
final class LedgerPropertyTests: XCTestCase {
    /// SplitMix64: a seeded generator, so a failure names the seed that reproduces it.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let workers = ["w1", "w2", "w3"]
    let ids = ["a", "b", "c"]

    /// A random history: claims, heartbeats (some late copies), expiries with guessed counters,
    /// releases, ends with right and wrong attempts, carries, cancels, duplicate records.
    func history(_ rng: inout Seeded, count: Int) -> [(entry: LedgerEntry, second: Double)] {
        var out: [(LedgerEntry, Double)] = []
        var counters = ["w1": 0, "w2": 0, "w3": 0]
        var second = 0.0
        for n in 0..<count {
            second += Double(Int.random(in: 1...40, using: &rng))
            let worker = workers.randomElement(using: &rng)!
            let id = ids.randomElement(using: &rng)!
            let attempt = Int.random(in: 0...3, using: &rng)
            let skew = Double(Int.random(in: -86_400...86_400, using: &rng))
            var record = LedgerRecord(kind: .claim, worker: worker, at: t0.addingTimeInterval(second + skew), ref: "r\(n)", id: id, attempt: attempt)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1:
                record.job = #"{"id":"\#(id)","task":"t2v-A14B","params":{}}"#
                record.task = "t2v-A14B"
                record.replyTo = "reply-\(n)"
            case 2, 3:
                record.kind = .heartbeat
                counters[worker]! += 1
                // Now and then a late copy of an older heartbeat.
                record.counter = Bool.random(using: &rng) ? counters[worker]! : max(0, counters[worker]! - 2)
                record.id = nil
                record.attempt = nil
                record.life = Int.random(in: 0..<4, using: &rng) == 0 ? "\(worker)-b" : "\(worker)-a"  // now and then a restart
                record.runs = ids.filter { _ in Bool.random(using: &rng) }.map { HeartbeatRun(id: $0, attempt: Int.random(in: 1...3, using: &rng)) }
            case 4:
                record.kind = .expire
                record.counter = Int.random(in: -1...3, using: &rng)
            case 5:
                record.kind = .release
            case 6, 7:
                record.kind = .end
                record.result = JobEvent(id: id, task: "t2v-A14B", event: .completed, worker: worker)
            case 8:
                record.kind = .carry
                record.job = #"{"id":"\#(id)","task":"t2v-A14B","params":{}}"#
            default:
                out.append((.cancelled(id: id, user: Bool.random(using: &rng) ? "alice" : nil), second))
                continue
            }
            out.append((.record(record), second))
            if Int.random(in: 0..<8, using: &rng) == 0 { out.append((.record(record), second + 0.5)) }  // a record written again
        }
        return out
    }

    /// Effects without the times that legitimately differ between a live and a replayed fold.
    func decisions(_ effects: [LedgerEffect]) -> [String] {
        effects.map { effect in
            switch effect {
            case .cancelRequested(let id, let user, let attempt): "cancel \(id) \(user ?? "-") \(attempt.map { "\($0.number)@\($0.worker)" } ?? "-")"
            default: "\(effect)"
            }
        }
    }

    func testTheSameLogGivesTheSameDecisionsLiveReplayedSkewedAndAtAnotherTime() {
        for seed in UInt64(1)...300 {
            var rng = Seeded(state: seed)
            let log = history(&rng, count: 60)
            var live = LedgerState(retention: 24 * 3600)
            var replayed = LedgerState(retention: 24 * 3600)
            let elsewhere = t0.addingTimeInterval(3 * 86_400)  // a reader whose clock is days away
            for (index, (entry, second)) in log.enumerated() {
                let a = decisions(live.apply(entry, at: t0.addingTimeInterval(second), live: true))
                let b = decisions(replayed.apply(entry, at: elsewhere.addingTimeInterval(second), live: false))
                XCTAssertEqual(a, b, "seed \(seed), record \(index)")
                let overdueLive = live.overdue(at: t0.addingTimeInterval(second + 121), lease: 120).map { "\($0.id)#\($0.attempt)#\($0.counter)" }
                let overdueReplayed = replayed.overdue(at: elsewhere.addingTimeInterval(second + 121), lease: 120).map {
                    "\($0.id)#\($0.attempt)#\($0.counter)"
                }
                XCTAssertEqual(overdueLive, overdueReplayed, "seed \(seed), record \(index)")
                // What counts against delivery_limit (expiries, less the excused) is the log's alone.
                XCTAssertEqual(live.jobs.mapValues(\.expiries), replayed.jobs.mapValues(\.expiries), "seed \(seed), record \(index)")
                if a != b { break }
            }
        }
    }

    func testAFoldStartedMidLogDecidesClaimsAsTheFullFold() {
        // Worker w1's long run: its claim is outside the late reader's window; a heartbeat and
        // a carry are inside. A duplicate submission's claim must attach for both readers.
        var claim = LedgerRecord(kind: .claim, worker: "w1", at: t0, ref: "c", id: "long")
        claim.job = #"{"id":"long","task":"t2v-A14B","params":{}}"#
        claim.replyTo = "first"
        var beat = LedgerRecord(kind: .heartbeat, worker: "w1", at: t0.addingTimeInterval(50_000), ref: "h")
        beat.counter = 9
        beat.runs = [HeartbeatRun(id: "long", attempt: 1)]
        var carry = LedgerRecord(kind: .carry, worker: "w1", at: t0.addingTimeInterval(50_001), ref: "k", id: "long", attempt: 1)
        carry.job = claim.job
        carry.replyTo = "first"
        var duplicate = LedgerRecord(kind: .claim, worker: "w2", at: t0.addingTimeInterval(90_000), ref: "d", id: "long")
        duplicate.job = claim.job
        let tail: [LedgerRecord] = [beat, carry, duplicate]
        var full = LedgerState(retention: 24 * 3600)
        var late = LedgerState(retention: 24 * 3600)
        _ = full.apply(.record(claim), at: t0)
        for record in tail {
            let at = record.at
            XCTAssertEqual(full.apply(.record(record), at: at), late.apply(.record(record), at: at, live: false), "\(record.kind)")
        }
        XCTAssertEqual(late.jobs["long"]?.live?.number, 1)
        XCTAssertEqual(late.jobs["long"]?.body, claim.job, "the carry taught the body: the job can be requeued")
        // The owner dies: both readers expire attempt 1 with the same counter, and requeue it.
        var expire = LedgerRecord(kind: .expire, worker: "w2", at: t0.addingTimeInterval(90_200), ref: "x", id: "long", attempt: 1)
        expire.counter = 9
        let fromFull = full.apply(.record(expire), at: expire.at)
        XCTAssertEqual(fromFull, late.apply(.record(expire), at: expire.at))
        guard case .expiryDecided(_, _, true, let requeue?)? = fromFull.last else { return XCTFail("\(fromFull)") }
        XCTAssertEqual(requeue.body, claim.job)
    }

    func testHeartbeatOfAnEndedJobIsNotAdopted() {
        // After the end, the fold knows the job: a heartbeat that still lists it is no claim.
        var state = LedgerState(retention: 24 * 3600)
        var claim = LedgerRecord(kind: .claim, worker: "w1", at: t0, ref: "c", id: "j")
        claim.job = "{}"
        _ = state.apply(.record(claim), at: t0)
        var end = LedgerRecord(kind: .end, worker: "w1", at: t0, ref: "e", id: "j", attempt: 1)
        end.result = JobEvent(id: "j", task: "t2v-A14B", event: .completed, worker: "w1")
        _ = state.apply(.record(end), at: t0.addingTimeInterval(1))
        var beat = LedgerRecord(kind: .heartbeat, worker: "w1", at: t0, ref: "h")
        beat.counter = 1
        beat.runs = [HeartbeatRun(id: "j", attempt: 1)]
        XCTAssertEqual(state.apply(.record(beat), at: t0.addingTimeInterval(2)).first, .notOwner(worker: "w1", id: "j", attempt: 1))
        XCTAssertEqual(state.jobs["j"]?.state, .ended)
    }
}
