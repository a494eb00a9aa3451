import Logging

/// Runs `body` up to `attempts` times while it fails with a retryable ``TransferError``,
/// waiting 0.5 s, 1 s, 2 s … (at most 8 s, with jitter) between tries. A cancel ends it at once.
func withRetries<T: Sendable>(
    attempts: Int, what: String, logger: Logger, _ body: () async throws(TransferError) -> T
) async throws(TransferError) -> T {
    var attempt = 1
    while true {
        do {
            return try await body()
        } catch  where error.isRetryable && attempt < attempts {
            let base = min(8.0, 0.5 * Double(1 << min(attempt - 1, 4)))
            let wait = base * Double.random(in: 0.8...1.2)
            logger.warning("\(what): \(error.message); try \(attempt + 1) of \(attempts) in \(String(format: "%.1f", wait)) s")
            do { try await Task.sleep(for: .seconds(wait)) } catch { throw TransferError(.cancelled, "\(what): cancelled") }
            attempt += 1
        }
    }
}
