import Synchronization

/// When the worker's owner loop last turned, for `/healthz`: a loop that has not turned for
/// `bound` is wedged (a C call that never returns, a disk that hangs a `statvfs`), which no
/// connection state shows, so the process is reported unhealthy and an orchestrator restarts
/// it. The loop turns at least every second while it runs, connected or not.
public final class LoopPulse: Sendable {
    private let last: Atomic<Int64>
    public let bound: Duration

    /// `bound`: the longest a healthy loop goes without a turn (see ``Worker``: the lease, at least 60 s).
    public init(bound: Duration, now: ContinuousClock.Instant = .now) {
        self.bound = bound
        last = Atomic(Self.nanoseconds(now))
    }

    public func beat(now: ContinuousClock.Instant = .now) { last.store(Self.nanoseconds(now), ordering: .releasing) }

    /// How long the loop has not turned, when that is longer than `bound`; nil while healthy.
    public func stalled(now: ContinuousClock.Instant = .now) -> Duration? {
        let quiet = Duration.nanoseconds(Self.nanoseconds(now) - last.load(ordering: .acquiring))
        return quiet > bound ? quiet : nil
    }

    private static let origin = ContinuousClock.now
    private static func nanoseconds(_ instant: ContinuousClock.Instant) -> Int64 {
        let d = instant - origin
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
