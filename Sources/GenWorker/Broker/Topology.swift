import AMQP
import GenWorkerCore
import Supervision

/// The exchanges and queues of protocol v1 (docs/protocol.md), declared by every worker at
/// start (and by `genworker declare`). Declarations are idempotent while the arguments match.
public enum Topology {
    public static func declare(on channel: AMQPChannel, configuration: WorkerConfiguration) throws(AMQPError) {
        var channel = channel
        let t = configuration.topology
        // Dead letters: invalid jobs, and jobs past the delivery limit.
        try channel.declareExchange(t.deadExchange, type: "fanout")
        try channel.declareQueue(t.deadQueue, arguments: ["x-queue-type": "quorum"])
        try channel.bindQueue(t.deadQueue, exchange: t.deadExchange, routingKey: "")
        // Jobs for a task no queue serves are kept, not dropped.
        try channel.declareExchange(t.unroutedExchange, type: "fanout")
        try channel.declareQueue(t.unroutedQueue, arguments: ["x-queue-type": "quorum"])
        try channel.bindQueue(t.unroutedQueue, exchange: t.unroutedExchange, routingKey: "")
        // Jobs.
        try channel.declareExchange(t.jobsExchange, type: "direct", arguments: ["alternate-exchange": .string(t.unroutedExchange)])
        // No `x-delivery-limit`: RabbitMQ 3.x counts every return in it (a bounce, a delivery a
        // dropped connection gave back), and at the limit drops the job into the dead-letter
        // queue with no result. Attempts are counted in the ledger (`topology.delivery_limit`).
        // RabbitMQ 4.0–4.2 default a quorum queue's delivery limit to 20 with no argument at all:
        // there, set a policy with `delivery-limit: -1` on the jobs queue (docs/deploy.md).
        let jobsArguments: AMQPTable = ["x-queue-type": "quorum", "x-dead-letter-exchange": .string(t.deadExchange)]
        do {
            try channel.declareQueue(t.jobsQueue, arguments: jobsArguments)
        } catch let error where error.replyCode == 406 {
            // Declared by an earlier version, with the limit (arguments cannot change in place):
            // keep using it. Re-create the queue, or override it with a policy, to lift the limit.
            channel = try channel.connection.openChannel()
            var legacy = jobsArguments
            legacy["x-delivery-limit"] = .int64(Int64(t.deliveryLimit))
            try channel.declareQueue(t.jobsQueue, arguments: legacy)
        }
        for task in configuration.worker.tasks {
            try channel.bindQueue(t.jobsQueue, exchange: t.jobsExchange, routingKey: task.rawValue)
        }
        // Cancels: a fanout every worker hears live, and a stream that remembers them.
        try channel.declareExchange(t.cancelExchange, type: "fanout")
        try channel.declareQueue(
            t.cancelStream,
            arguments: [
                "x-queue-type": "stream",
                "x-max-age": .string("\(t.cancelRetentionHours + 1)h"),
                "x-stream-max-segment-size-bytes": .int64(8 << 20),
            ])
        try channel.bindQueue(t.cancelStream, exchange: t.cancelExchange, routingKey: "")
        // The ledger: every submission of a served task, every cancel, and the workers' own
        // records (claims, heartbeats, expiries, results), in one replicated order.
        try channel.declareQueue(
            t.ledgerStream,
            arguments: [
                "x-queue-type": "stream",
                "x-max-age": .string(Self.ledgerMaxAge(retentionHours: t.ledgerRetentionHours)),
                "x-stream-max-segment-size-bytes": .int64(8 << 20),
            ])
        try channel.bindQueue(t.ledgerStream, exchange: t.cancelExchange, routingKey: "")
        for task in configuration.worker.tasks {
            try channel.bindQueue(t.ledgerStream, exchange: t.jobsExchange, routingKey: task.rawValue)
        }
        // Events, and the results queue that keeps every terminal event.
        try channel.declareExchange(t.eventsExchange, type: "topic")
        try channel.declareQueue(
            t.resultsQueue,
            arguments: [
                "x-queue-type": "quorum",
                "x-message-ttl": .int64(Int64(t.resultsTTLHours) * 3_600_000),
            ])
        for status in ["completed", "failed", "cancelled"] {
            try channel.bindQueue(t.resultsQueue, exchange: t.eventsExchange, routingKey: "*.\(status)")
        }
    }

    /// The stream's `x-max-age`: the window plus an hour, in whole hours when the window is
    /// whole hours (the spelling of every earlier release: a stream is redeclared only with
    /// the arguments it was made with), else in seconds.
    static func ledgerMaxAge(retentionHours: Double) -> String {
        let hours = retentionHours + 1
        return hours == hours.rounded() ? "\(Int(hours))h" : "\(Int((hours * 3600).rounded(.up)))s"
    }
}
