import Foundation

extension WorkerConfiguration {
    public struct TopologySection: Sendable, Equatable, Decodable, ConfigSection {
        /// `topology.jobs_exchange`: direct; routing key = task.
        public var jobsExchange = "genworker.jobs"
        /// `topology.jobs_queue`: the quorum queue every worker of the fleet consumes.
        public var jobsQueue = "genworker.jobs"
        /// `topology.cancel_exchange`: fanout every worker hears.
        public var cancelExchange = "genworker.cancel"
        /// `topology.cancel_stream`: a stream bound to the cancel fanout, replayed at start.
        public var cancelStream = "genworker.cancel.log"
        /// `topology.events_exchange`: topic; routing key `<id>.<event>`.
        public var eventsExchange = "genworker.events"
        /// `topology.results_queue`: every terminal event, kept `results_ttl_h`.
        public var resultsQueue = "genworker.results"
        public var deadExchange = "genworker.dead"
        public var deadQueue = "genworker.dead"
        /// `topology.unrouted_exchange`: the jobs exchange's alternate exchange (tasks no queue serves).
        public var unroutedExchange = "genworker.unrouted"
        public var unroutedQueue = "genworker.unrouted"
        /// `topology.delivery_limit`: deliveries before a job fails with `delivery_limit` and is dead-lettered.
        public var deliveryLimit = 3
        /// `topology.results_ttl_h`: how long results wait in the results queue.
        public var resultsTTLHours = 168
        /// `topology.cancel_retention_h`: how long the cancel stream keeps (remembers) cancels,
        /// for clients that read it. Workers honour a cancel from the ledger, for
        /// `ledger_retention_h` (docs/protocol.md, "Cancelling").
        public var cancelRetentionHours = 24
        /// `topology.ledger_stream`: the fleet's record (a stream): submissions, cancels, claims,
        /// heartbeats, expiries and results, in one replicated order.
        public var ledgerStream = "genworker.ledger"
        /// `topology.ledger_retention_h`: how far back workers and `genworker status` read the
        /// ledger: the window in which an id runs once and its result is remembered. Fractions
        /// are allowed (0.005 = 18 s: the tests of jobs longer than the window); a run longer
        /// than the window is carried forward in it (`carry` records, docs/protocol.md).
        public var ledgerRetentionHours: Double = 24
        /// `topology.ledger_writers`: the AMQP users whose ledger records count. The broker
        /// vouches for a message's `user_id` (it refuses one that is not the connection's user),
        /// so a record from any other account is ignored and counted. Empty (the default): the
        /// user of `amqp.url` (the first of `amqp.urls`). `["*"]`: any account (a fleet with
        /// workers older than this check, which write no `user_id`). Give workers an account
        /// of their own: a client with the workers' account can write what a worker can.
        public var ledgerWriters: [String] = []

        package static var keys: [ConfigKey<Self>] {
            [
                .key("jobs_exchange", \.jobsExchange),
                .key("jobs_queue", \.jobsQueue),
                .key("cancel_exchange", \.cancelExchange),
                .key("cancel_stream", \.cancelStream),
                .key("events_exchange", \.eventsExchange),
                .key("results_queue", \.resultsQueue),
                .key("dead_exchange", \.deadExchange),
                .key("dead_queue", \.deadQueue),
                .key("unrouted_exchange", \.unroutedExchange),
                .key("unrouted_queue", \.unroutedQueue),
                .number("delivery_limit", \.deliveryLimit, 1...1000),
                .number("results_ttl_h", \.resultsTTLHours, 1...87600),
                .number("cancel_retention_h", \.cancelRetentionHours, 1...8760),
                .key("ledger_stream", \.ledgerStream),
                .number("ledger_retention_h", \.ledgerRetentionHours, 0.005...8760, unit: "hours"),
                .key("ledger_writers", \.ledgerWriters),
            ]
        }

        /// The ledger window in seconds.
        public var ledgerRetention: TimeInterval { ledgerRetentionHours * 3600 }

        public init() {}
        public init(from decoder: Decoder) throws { try self.init(reading: decoder) }
    }
}
