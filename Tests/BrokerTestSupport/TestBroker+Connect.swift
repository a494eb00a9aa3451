import AMQP
import Foundation
// What the broker tests share besides TestSupport: a connection to the private broker.
@_exported import TestSupport

extension TestBroker {
    public static func connect(heartbeat: Duration = .seconds(10), name: String = "genworker-tests") throws -> AMQPConnection {
        var configuration = try AMQPConfiguration(url: url)
        configuration.heartbeat = heartbeat
        configuration.connectionName = name
        return try AMQPConnection(configuration: configuration)
    }
}

extension AMQPConnection {
    /// Waits for the next delivery, keeping other events aside; nil after `timeout`.
    public func nextDelivery(timeout: Duration = .seconds(5)) throws -> AMQPDelivery? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if case .delivery(let delivery)? = try nextEvent(timeout: deadline - ContinuousClock.now) { return delivery }
        }
        return nil
    }
}
