/// What the worker does with a running job when asked to shut down.
public enum ShutdownMode: String, Sendable, Decodable {
    /// Finish running jobs (up to `shutdown.drain_timeout_s`), then exit.
    case drain
    /// Stop running jobs and give them back to the queue (no result), then exit.
    case requeue
}
