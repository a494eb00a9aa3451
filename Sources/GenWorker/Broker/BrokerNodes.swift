import GenWorkerCore
import Logging

/// The nodes of `amqp.urls` (or `amqp.url`), tried in turn: the one place that picks a node,
/// for the worker, the dashboard's follower and the command line.
package struct BrokerNodes {
    package let urls: [String]
    /// Where the next try starts: the node that served last, or the one after a lost node.
    private var next = 0

    package init(_ configuration: WorkerConfiguration) {
        urls = configuration.amqp.endpoints
    }

    /// The first node `open` accepts, starting at the one that served last; `between` runs
    /// after each refused try (the owner's fence must not wait for every node's timeout).
    /// With every node down, throws the first node's error.
    package mutating func connect<T>(logger: Logger? = nil, between: () -> Void = {}, _ open: (String) throws -> T) throws -> T {
        var failure: Error?
        for offset in 0..<urls.count {
            let index = (next + offset) % urls.count
            do {
                let connected = try open(urls[index])
                next = index
                if urls.count > 1 { logger?.info("connected to \(GenWorkerError.redacted(url: urls[index]))") }
                return connected
            } catch {
                if urls.count > 1 { logger?.warning("cannot use \(GenWorkerError.redacted(url: urls[index])): \(error)") }
                failure = failure ?? error
                between()
            }
        }
        throw failure ?? GenWorkerError(.configuration, "no broker URL (amqp.url or amqp.urls)")
    }

    /// The node that served was lost: the next try starts after it, so it is tried last.
    package mutating func lost() {
        next += 1
    }
}
