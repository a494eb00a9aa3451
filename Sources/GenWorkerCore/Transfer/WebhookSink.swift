/// Takes a job's events for its webhook (`webhooks`): the worker hands them over as it
/// publishes them on AMQP and goes on; delivery, retries and signing are the sink's, so a
/// slow receiver never delays a result.
public protocol WebhookSink: Sendable {
    func deliver(_ event: JobEvent, to webhook: Webhook)
}
