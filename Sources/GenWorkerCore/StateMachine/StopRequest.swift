/// Why a running job is asked to stop before it ends by itself.
public enum StopRequest: Int, Sendable {
    /// A client cancelled the job.
    case cancelled = 1
    /// The worker lost the job's ownership (its lease could not be renewed in the ledger, or
    /// another worker's expiry took it): the job runs elsewhere, so this run must end and publish nothing.
    case ownershipLost = 2
    /// Graceful shutdown in requeue mode: stop the run, give the job back to the queue.
    case shutdown = 3
}
