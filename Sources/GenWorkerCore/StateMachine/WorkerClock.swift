import Foundation

/// The worker's one source of time for the ledger. Lease decisions (when a renewal was seen,
/// which attempt is overdue) run on the monotonic clock, so a wall-clock step (NTP, a VM
/// resumed, an operator's `date -s`) cannot expire a healthy run; record times (`at`) come
/// from the wall clock, for people to read. `GENWORKER_CLOCK_OFFSET_S` shifts both by a fixed
/// number of seconds: the fault-injection harness's way to give one worker a skewed clock
/// (libfaketime cannot be preloaded into a Swift binary without it losing its arguments).
package struct WorkerClock: Sendable {
    package let offset: TimeInterval
    private let startWall: Date
    private let startMonotonic: ContinuousClock.Instant

    package init(offset: TimeInterval = Self.offsetFromEnvironment) {
        self.offset = offset
        startWall = Date()
        startMonotonic = .now
    }

    /// The wall clock, shifted: what this worker writes as a record's `at`.
    package var wall: Date { Date().addingTimeInterval(offset) }

    /// Steady time expressed as a date: the wall clock at start plus the monotonic time since.
    /// It never jumps, whatever the wall clock does; the ledger fold and the expiry scan use it.
    package var steady: Date { startWall.addingTimeInterval(offset + (ContinuousClock.now - startMonotonic).inSeconds) }

    package static var offsetFromEnvironment: TimeInterval {
        ProcessInfo.processInfo.environment["GENWORKER_CLOCK_OFFSET_S"].flatMap(TimeInterval.init) ?? 0
    }
}
