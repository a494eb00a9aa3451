/// Cancels heard in the last `retention`: live from the cancel fanout, and replayed at
/// start from the cancel stream, so a cancel sent while no worker ran still counts. Each
/// keeps the user the broker vouched for (`user_id`), for `cancel.authorize`.
/// Pure: the caller says what time it is.
struct CancelLog: Sendable {
    typealias Instant = ContinuousClock.Instant

    let retention: Duration
    private var cancels: [String: [(at: Instant, user: String?)]] = [:]
    private var lastPrune: Instant?

    init(retention: Duration) { self.retention = retention }

    /// How many ids it holds (pruned at most once a minute, or past a million ids).
    var count: Int { cancels.count }

    mutating func insert(_ id: String, user: String?, at now: Instant) {
        cancels[id, default: []].append((now, user))
        if lastPrune.map({ now - $0 > .seconds(60) }) ?? true || cancels.count > 1_000_000 {
            cancels = cancels.compactMapValues { entries in
                let kept = entries.filter { now - $0.at < retention }
                return kept.isEmpty ? nil : kept
            }
            lastPrune = now
        }
    }

    /// Whether a cancel of `id` within the retention came from a user `allowed` accepts.
    func contains(_ id: String, at now: Instant, allowed: (String?) -> Bool) -> Bool {
        cancels[id]?.contains { now - $0.at < retention && allowed($0.user) } ?? false
    }
}
