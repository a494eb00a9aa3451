// Benchmark of the AMQP layer (not a test): publish-with-confirm throughput and
// publish→consume round-trip latency. scripts/bench-amqp.sh runs it beside pika.
import AMQP
import Foundation

let url = CommandLine.arguments.dropFirst().first ?? "amqp://guest:guest@127.0.0.1:5679/"
let count = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 5000

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

let connection = try AMQPConnection(url: url)
let channel = try connection.openChannel()
try channel.enableConfirms()
let queue = try channel.declareQueue("", durable: false, exclusive: true).name
let body = Array(repeating: UInt8(ascii: "x"), count: 256)
let clock = ContinuousClock()

// 1. One publish at a time, each waiting for its confirm (what a job's result publish does).
var start = clock.now
for _ in 0..<count {
    _ = try channel.publishConfirmed(exchange: "", routingKey: queue, body: body, properties: .persistentJSON())
}
let syncRate = Double(count) / seconds(clock.now - start)
try channel.purgeQueue(queue)

// 2. All published, then all confirms awaited (pipelined).
start = clock.now
var last: UInt64 = 0
for _ in 0..<count { last = try channel.publish(exchange: "", routingKey: queue, body: body, properties: .persistentJSON()) }
_ = try channel.waitForConfirm(last, timeout: .seconds(60))
let pipelinedRate = Double(count) / seconds(clock.now - start)
try channel.purgeQueue(queue)

// 3. Round trip: publish one, wait for its delivery on the same connection.
let consumer = try connection.openChannel()
try consumer.consume(queue: queue, noAck: true)
var latencies: [Double] = []
for _ in 0..<min(count, 2000) {
    let t0 = clock.now
    try consumer.publish(exchange: "", routingKey: queue, body: body)
    while true {
        if case .delivery? = try connection.nextEvent(timeout: .seconds(5)) { break }
    }
    latencies.append(seconds(clock.now - t0) * 1000)
}
latencies.sort()
print(
    String(
        format:
            "{\"client\": \"genworker AMQP (Swift/rabbitmq-c)\", \"confirmed_sync_per_s\": %.0f, \"confirmed_pipelined_per_s\": %.0f, \"rtt_p50_ms\": %.3f, \"rtt_p99_ms\": %.3f}",
        syncRate, pipelinedRate, percentile(latencies, 0.5), percentile(latencies, 0.99)))
