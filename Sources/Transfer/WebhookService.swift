import AsyncHTTPClient
import Foundation
import GenWorkerCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Delivers jobs' events to their webhooks: POSTs the event's JSON (the body AMQP carries),
/// signed the Standard Webhooks way, retried with backoff (1 s, 2 s … at most 60 s apart)
/// until a 2xx or until `webhooks.retry_for_s` ran out. Every try of one event carries the
/// same `webhook-id`, so a receiver drops what it already has. Each URL is checked by the
/// egress rules at every try. A service of `genworker run`: at shutdown, deliveries still
/// trying get `shutdown_grace` seconds, then stop (logged).
public final class WebhookService: Service, WebhookSink {
    struct Delivery: Sendable {
        var event: JobEvent
        var webhook: Webhook
    }

    private let signature: WebhookSignature
    private let egress: TransferPlan.Egress
    private let timeout: TimeAmount
    private let retryFor: Duration
    private let logger: Logger
    private let stream: AsyncStream<Delivery>
    private let continuation: AsyncStream<Delivery>.Continuation
    /// When the service was asked to stop; deliveries still trying give up `shutdownGrace` later.
    private let stopping = Mutex<ContinuousClock.Instant?>(nil)
    /// How long deliveries still trying may go on once the service is asked to stop.
    static let shutdownGrace: Duration = .seconds(10)

    public init(configuration: WorkerConfiguration, secret: WebhookSecret, logger: Logger) {
        signature = WebhookSignature(secret: secret)
        egress = TransferPlan(job: "", configuration: configuration).egress
        timeout = .milliseconds(Int64(configuration.webhooks.timeoutSeconds * 1000))
        retryFor = .seconds(configuration.webhooks.retryForSeconds)
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Delivery.self)
    }

    public func deliver(_ event: JobEvent, to webhook: Webhook) {
        guard webhook.events.contains(event.event) else { return }
        continuation.yield(Delivery(event: event, webhook: webhook))
    }

    public func run() async throws {
        let http = GuardedHTTP(egress: EgressGuard(egress))
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                for await delivery in stream {
                    group.addTask { await self.send(delivery, http: http) }
                }
            } onGracefulShutdown: {
                self.stopping.withLock { $0 = ContinuousClock.now }
                self.continuation.finish()
            }
        }
    }

    /// Whether a delivery may wait `wait` more: not past its window, nor past the shutdown grace.
    private func mayWait(_ wait: Duration, since started: ContinuousClock.Instant) -> Bool {
        let now = ContinuousClock.now
        if let stop = stopping.withLock({ $0 }), now + wait > stop + Self.shutdownGrace { return false }
        return now - started + wait <= retryFor
    }

    /// One event to one webhook, until it is taken or its window ends.
    func send(_ delivery: Delivery, http: GuardedHTTP) async {
        let event = delivery.event
        let id = Self.deliveryID(event)
        let shown = EgressGuard.redacted(delivery.webhook.url)
        guard let body = try? event.encoded() else { return }
        let started = ContinuousClock.now
        var wait: Duration = .seconds(1)
        var tries = 0
        while !Task.isCancelled {
            tries += 1
            let headers =
                signature.sign(id: id, timestamp: Date(), body: body) + [
                    ("Content-Type", "application/json"), ("User-Agent", "genworker/\(GenWorkerVersion.current)"),
                ]
            do {
                let status: UInt = try await http.execute(
                    method: .POST, url: delivery.webhook.url, headers: headers, body: .bytes(body), deadline: .now() + timeout
                ) { response async throws(TransferError) in
                    _ = try? await response.body.collect(upTo: 1 << 16)
                    return response.status.code
                }
                if (200..<300).contains(status) {
                    logger.info("webhook \(shown): \(event.event.rawValue) delivered (try \(tries))", metadata: ["job": "\(event.id)"])
                    return
                }
                logger.warning("webhook \(shown): \(event.event.rawValue) answered HTTP \(status) (try \(tries))", metadata: ["job": "\(event.id)"])
            } catch {
                logger.warning("webhook \(shown): \(event.event.rawValue): \(error.message) (try \(tries))", metadata: ["job": "\(event.id)"])
                if error.code == .refused { return }  // the rules will not change between tries
            }
            guard mayWait(wait, since: started) else {
                logger.error(
                    "webhook \(shown): \(event.event.rawValue) not delivered after \(tries) tries (\(stopping.withLock { $0 } == nil ? "webhooks.retry_for_s" : "the worker stops"))",
                    metadata: ["job": "\(event.id)"])
                return
            }
            do { try await Task.sleep(for: wait) } catch { break }
            wait = min(wait * 2, .seconds(60))
        }
        logger.warning("webhook \(shown): \(event.event.rawValue) not delivered: cancelled", metadata: ["job": "\(event.id)"])
    }

    /// The signing secret: `GENWORKER_WEBHOOK_SECRET`, else the file `webhooks.secret_file`; nil: none.
    public static func secret(
        configuration: WorkerConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(GenWorkerError) -> WebhookSecret? {
        var text = environment["GENWORKER_WEBHOOK_SECRET"] ?? ""
        let source = text.isEmpty ? "webhooks.secret_file (\(configuration.webhooks.secretFile))" : "GENWORKER_WEBHOOK_SECRET"
        if text.isEmpty && !configuration.webhooks.secretFile.isEmpty {
            guard let contents = try? String(contentsOfFile: configuration.webhooks.secretFile, encoding: .utf8) else {
                throw GenWorkerError(.configuration, "cannot read webhooks.secret_file \(configuration.webhooks.secretFile)")
            }
            text = contents
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return nil }
        guard let secret = WebhookSecret(text) else {
            throw GenWorkerError(.configuration, "\(source) must hold whsec_ and a base64 key of 24 to 64 bytes")
        }
        return secret
    }

    /// The same on every try of one event (receivers drop duplicates by it); no `.` allowed.
    static func deliveryID(_ event: JobEvent) -> String {
        var id = "\(event.id)-\(event.event.rawValue)"
        if event.event == .progress, let progress = event.progress {
            let phase = (progress.phase ?? "").unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }
            id += "-\(event.step ?? "")-\(String(String.UnicodeScalarView(phase)))-\(progress.clip ?? 0)-\(progress.step)"
        }
        return id
    }
}
