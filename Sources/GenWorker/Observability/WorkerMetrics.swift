import Foundation
import GenWorkerCore
import Metrics
import Supervision

/// The worker's metrics, through swift-metrics (the CLI bootstraps swift-prometheus and
/// serves them on `/metrics`). Labels never carry job ids or anything secret.
struct WorkerMetrics: Sendable {
    /// `genworker_jobs_total{task,status,reason}`: terminal results published.
    func jobFinished(task: String?, status: JobEventKind, reason: JobReason?) {
        Counter(
            label: "genworker_jobs_total",
            dimensions: [
                ("task", task.flatMap { WanTask(rawValue: $0)?.rawValue } ?? "unknown"),
                ("status", status.rawValue), ("reason", reason?.rawValue ?? ""),
            ]
        ).increment()
    }

    /// `genworker_job_run_seconds{task}`: how long the generator ran.
    func jobRan(task: String, seconds: Double) {
        Metrics.Timer(label: "genworker_job_run_seconds", dimensions: [("task", task)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// `genworker_queue_wait_seconds{task}`: publish (AMQP timestamp) to start; only for jobs
    /// whose message carries the AMQP `timestamp` property (the CLI and the clients set it).
    func queueWait(task: String, seconds: Double) {
        Metrics.Timer(label: "genworker_queue_wait_seconds", dimensions: [("task", task)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(max(0, seconds) * 1e9))
    }

    /// `genworker_cancel_latency_seconds`: cancel heard → the job's processes gone.
    func cancelLatency(seconds: Double) {
        Metrics.Timer(label: "genworker_cancel_latency_seconds", preferredDisplayUnit: .seconds).recordNanoseconds(Int64(seconds * 1e9))
    }

    /// `genworker_cancels_ignored_total{reason}`: cancels not honoured (unauthorised).
    func cancelIgnored(reason: String) {
        Counter(label: "genworker_cancels_ignored_total", dimensions: [("reason", reason)]).increment()
    }

    /// `genworker_slots_busy` and `genworker_slots`.
    func slots(busy: Int, total: Int) {
        Gauge(label: "genworker_slots_busy").record(busy)
        Gauge(label: "genworker_slots").record(total)
    }

    /// Makes every family without per-job labels visible from the start (at zero), so
    /// dashboards and alert rules never see them absent.
    func registerAtStart(slots: Int, tasks: [WanTask]) {
        self.slots(busy: 0, total: slots)
        for task in tasks {
            _ = Metrics.Timer(label: "genworker_job_run_seconds", dimensions: [("task", task.rawValue)], preferredDisplayUnit: .seconds)
            _ = Metrics.Timer(label: "genworker_queue_wait_seconds", dimensions: [("task", task.rawValue)], preferredDisplayUnit: .seconds)
        }
        connected(false)
        quarantined(false)
        _ = Counter(label: "genworker_cancels_ignored_total", dimensions: [("reason", "unauthorized")])
        _ = Metrics.Timer(label: "genworker_cancel_latency_seconds", preferredDisplayUnit: .seconds)
        ledgerLag(seconds: 0)
    }

    /// `genworker_pipeline_builds_total`: warm jobs whose pipeline had to be built.
    func pipelineBuilt() { Counter(label: "genworker_pipeline_builds_total").increment() }

    /// `genworker_pipeline_reuses_total`: warm jobs that reused a loaded pipeline.
    func pipelineReused() { Counter(label: "genworker_pipeline_reuses_total").increment() }

    /// `genworker_runner_restarts_total`: warm runners started after a slot's first (crash,
    /// kill after a stop that did not take, recycling, idle exit).
    func runnerRestarted() { Counter(label: "genworker_runner_restarts_total").increment() }

    /// How long the last ledger catch-up took, and how many records it folded.
    func ledgerCaughtUp(seconds: Double, records: Int) {
        Gauge(label: "genworker_ledger_catchup_seconds").record(seconds)
        Counter(label: "genworker_ledger_records_total").increment(by: Int64(records))
    }

    /// `genworker_ledger_lag_seconds`: from writing a heartbeat to reading it back through
    /// the ledger (how far behind the order this worker's renewals and decisions are).
    /// A ledger record from an account not in `topology.ledger_writers` was ignored.
    func ledgerRecordIgnored() { Counter(label: "genworker_ledger_records_ignored_total").increment() }

    func ledgerLag(seconds: Double) { Gauge(label: "genworker_ledger_lag_seconds").record(seconds) }

    /// `genworker_broker_connected`: 1 while connected and consuming.
    func connected(_ value: Bool) {
        Gauge(label: "genworker_broker_connected").record(value ? 1 : 0)
    }

    /// `genworker_quarantined`: 1 while the worker takes no jobs because they keep failing for
    /// the machine's sake (`worker.quarantine_after`), until its probe passes.
    func quarantined(_ value: Bool) { Gauge(label: "genworker_quarantined").record(value ? 1 : 0) }
}
