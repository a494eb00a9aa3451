import AMQP
import Foundation
import GenWorkerCore
import Logging
import ServiceLifecycle
import Supervision
import Synchronization
import WakePipe

/// The dashboard's one broker connection, on an owner thread of its own (rabbitmq-c's rule):
/// it follows the ledger (from the retention window, then live) and the events exchange (the
/// progress bars) into a ``FleetView``, reads queue depths every few seconds, and publishes
/// what the HTTP handlers ask for (a job, a cancel) with a publisher confirm. Reconnects to
/// any node of `amqp.urls` with backoff. A `Service`: runs until the group shuts down.
public final class FleetFollower: Service, Sendable {
    /// What an HTTP handler asks the owner thread to publish.
    public enum Command: Sendable {
        case submit(JobMessage, user: String)
        case cancel(id: String, user: String)
    }

    private struct Pending: Sendable {
        let command: Command
        let done: @Sendable (Result<Void, GenWorkerError>) -> Void
    }

    public let view: FleetView
    /// The broker account this dashboard publishes as: the one whose `x-genworker-requested-by` it trusts.
    private let ownAccount: String
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private let wake = WakePipe()
    /// Commands waiting for the owner thread; `closed` once the follower has stopped, after
    /// which a command is refused at once instead of waiting for a thread that is gone.
    private let commands = Mutex<(pending: [Pending], closed: Bool)>(([], false))
    private let stopping = Atomic<Bool>(false)

    public init(configuration: WorkerConfiguration, view: FleetView, logger: Logger) {
        ownAccount = (try? AMQPConfiguration(url: configuration.amqp.endpoints[0]))?.user ?? "guest"
        self.configuration = configuration
        self.view = view
        self.logger = logger
    }

    /// Publishes a command through the owner thread; returns when the broker confirmed it.
    public func send(_ command: Command) async throws(GenWorkerError) {
        let result: Result<Void, GenWorkerError> = await withCheckedContinuation { continuation in
            let accepted = commands.withLock { box in
                if !box.closed { box.pending.append(Pending(command: command, done: { continuation.resume(returning: $0) })) }
                return !box.closed
            }
            guard accepted else { return continuation.resume(returning: .failure(GenWorkerError(.brokerFailed, "the dashboard is stopping"))) }
            wake.signal()
        }
        try result.get()
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await OwnedThread.run { [self] in follow() }
            } onCancel: {
                self.stop()
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }

    private var isStopping: Bool { stopping.load(ordering: .acquiring) }

    private func follow() {
        var offset: Int64?
        var backoff = Duration.milliseconds(250)
        var nodes = BrokerNodes(configuration)
        while !isStopping {
            do {
                let (url, connection) = try nodes.connect(logger: logger) { url in (url, try open(url)) }
                try serve(connection, url: url, offset: &offset)
            } catch {
                view.setConnected(false)
                failPending(GenWorkerError(.brokerFailed, "the dashboard's broker connection is down: \(error)"))
                if isStopping { break }
                logger.warning("dashboard: broker connection ended (\(error)); reconnecting in \(backoff)")
                nodes.lost()
                wake.wait(timeout: backoff)
                backoff = min(backoff * 2, configuration.amqp.reconnectMax)
                continue
            }
            backoff = .milliseconds(250)
        }
        failPending(GenWorkerError(.brokerFailed, "the dashboard is stopping"), close: true)
    }

    private func open(_ url: String) throws -> AMQPConnection {
        var amqp = try AMQPConfiguration(url: url)
        amqp.connectionName = amqp.connectionName ?? "genworker dashboard"
        return try AMQPConnection(configuration: amqp, wakeup: wake)
    }

    private func serve(_ connection: AMQPConnection, url: String, offset: inout Int64?) throws {
        let topology = configuration.topology
        defer { connection.close() }
        let control = try connection.openChannel()
        if configuration.worker.declareTopology { try Topology.declare(on: control, configuration: configuration) }
        let publisher = try connection.openChannel()
        try publisher.enableConfirms()
        let events = try connection.openChannel()
        let queue = try events.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        try events.bindQueue(queue, exchange: topology.eventsExchange, routingKey: "*.progress")
        try events.consume(queue: queue, noAck: true)
        var ledger = try LedgerCursor(channel: try connection.openChannel(), configuration: configuration, resumingAfter: offset, prefetch: 2000)
        let marker = LedgerRecord(kind: .marker, worker: "genworker-dashboard")
        // On the confirm channel: wait, so no confirm is left unclaimed.
        _ = try publisher.waitForConfirm(
            try LedgerStream.write(marker, on: publisher, topology: topology), timeout: configuration.amqp.confirmTimeout)
        var caughtUp = false
        view.setConnected(true)
        var nextDepths = ContinuousClock.now
        logger.info("dashboard: following \(topology.ledgerStream) through \(GenWorkerError.redacted(url: url))")
        while !isStopping {
            try runCommands(publisher)
            if ContinuousClock.now >= nextDepths {
                view.setQueues(try depths(connection))
                view.ping()
                nextDepths = .now + .seconds(5)
            }
            guard let event = try connection.nextEvent(timeout: .seconds(1)) else {
                try ledger.acknowledgeAll()
                continue
            }
            switch event {
            case .delivery(let delivery) where delivery.channel == ledger.channel.id:
                let entry = try ledger.read(delivery)
                offset = ledger.next ?? offset
                var params: JobMessage?
                if case .submitted = entry { params = try? ProtocolCoding.decode(JobMessage.self, from: delivery.body) }
                if LedgerCursor.isMarker(entry, marker) {
                    caughtUp = true
                    logger.info("dashboard: ledger caught up (\(view.health.jobs) jobs in the window)")
                }
                // Who is behind a submit or cancel counts only from a dashboard or API (the
                // broker vouches for its account): another publisher cannot name an owner.
                let requestedBy =
                    delivery.properties.userID == ownAccount ? delivery.properties.headers?["x-genworker-requested-by"]?.stringValue : nil
                view.fold(entry, params: params, requestedBy: requestedBy, at: Date(), live: caughtUp)
            case .delivery(let delivery) where delivery.channel == events.id:
                if let event = try? JobEvent.decode(delivery.body), event.event == .progress { view.progress(event) }
            case .connectionClosed(let error):
                throw error
            case .channelClosed(let channel, let code, let text):
                throw GenWorkerError(.brokerFailed, "channel \(channel) closed by the broker: \(code) \(text)")
            case .consumerCancelled(_, let tag):
                throw GenWorkerError(.brokerFailed, "the broker cancelled consumer \(tag)")
            default:
                continue
            }
        }
    }

    /// Depths of the jobs, dead and unrouted queues (a passive declare each, on a channel of its own:
    /// a missing queue closes the channel).
    private func depths(_ connection: AMQPConnection) throws -> [String: UInt32] {
        let t = configuration.topology
        var out: [String: UInt32] = [:]
        for queue in [t.jobsQueue, t.deadQueue, t.unroutedQueue] {
            let channel = try connection.openChannel()
            if let info = try? channel.declareQueue(queue, passive: true) { out[queue] = info.messageCount }
            try? channel.close()
        }
        return out
    }

    /// Publishes every waiting command, then waits for their confirms: one round trip for a
    /// burst of submits, not one each (the API's submits per second, docs/benchmarks.md).
    private func runCommands(_ publisher: AMQPChannel) throws {
        let pending = commands.withLock { box in
            defer { box.pending.removeAll() }
            return box.pending
        }
        var sent: [(index: Int, sequence: UInt64)] = []
        var answered = Set<Int>()
        do {
            for (index, item) in pending.enumerated() {
                guard let message = try? message(for: item.command) else {
                    answered.insert(index)
                    item.done(.failure(GenWorkerError(.brokerFailed, "the message could not be encoded")))
                    continue
                }
                sent.append(
                    (
                        index,
                        try publisher.publish(exchange: message.exchange, routingKey: message.key, body: message.body, properties: message.properties)
                    ))
            }
            for (index, sequence) in sent {
                let confirm = try publisher.waitForConfirm(sequence, timeout: configuration.amqp.confirmTimeout)
                answered.insert(index)
                pending[index].done(
                    confirm == .ack ? .success(()) : .failure(GenWorkerError(.brokerFailed, "the broker refused the message (basic.nack)")))
            }
        } catch {
            // The connection failed: what is not answered yet is answered with that.
            for index in pending.indices where !answered.contains(index) {
                pending[index].done(.failure(GenWorkerError(.brokerFailed, "publishing failed: \(error)")))
            }
            throw error
        }
    }

    /// A command as the message to publish: where, and with the dashboard user or API token behind it.
    private func message(for command: Command) throws -> (exchange: String, key: String, body: [UInt8], properties: AMQPProperties) {
        let t = configuration.topology
        var properties = AMQPProperties.persistentJSON()
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        properties.appID = "genworker-dashboard"
        // The broker checks user_id against the connection's account: it vouches that this
        // dashboard published it, and so the `x-genworker-requested-by` beside it.
        properties.userID = ownAccount
        switch command {
        case .submit(let job, let user):
            properties.messageID = job.id
            properties.headers = ["x-genworker-requested-by": .string(user)]
            return (t.jobsExchange, job.task, try ProtocolCoding.encode(job), properties)
        case .cancel(let id, let user):
            properties.headers = ["x-genworker-requested-by": .string(user)]
            return (t.cancelExchange, "", try ProtocolCoding.encode(CancelMessage(id: id)), properties)
        }
    }

    /// Answers every waiting command with `error`; with `close`, and every later one too.
    private func failPending(_ error: GenWorkerError, close: Bool = false) {
        let pending = commands.withLock { box in
            defer { box.pending.removeAll() }
            box.closed = box.closed || close
            return box.pending
        }
        for item in pending { item.done(.failure(error)) }
    }
}
