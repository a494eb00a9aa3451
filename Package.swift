// swift-tools-version:6.0
import PackageDescription

// Linux only: the worker relies on /proc, prctl(PR_SET_CHILD_SUBREAPER), pidfd_open and
// posix_spawn's GNU extensions, so no Apple platform is listed.
let package = Package(
    name: "genworker",
    products: [
        .executable(name: "genworker", targets: ["genworker"]),
        .library(name: "AMQP", targets: ["AMQP"]),
        .library(name: "GenWorker", targets: ["GenWorker", "GenWorkerCore", "Supervision", "Transfer", "GenWorkerWeb"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // rabbitmq-c 0.11 from the system (Debian: librabbitmq-dev).
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        // What the AMQP layer cannot call from Swift: the variadic login, a socket send timeout.
        .target(name: "CRabbitMQShim", dependencies: ["CRabbitMQ"]),
        // Process primitives Swift cannot reach: prctl, pidfd_open, GNU spawn flags, wait-status macros.
        .target(name: "CProcessShims"),
        // A self-pipe that wakes a poll() from any thread; shared by the AMQP owner loop and the supervisor.
        .target(name: "WakePipe"),
        // The AMQP layer's values (URLs and settings, properties, field tables, events, errors):
        // pure Swift, so the core can read a message's properties without a connection.
        .target(name: "AMQPTypes"),
        // Connections and channels over rabbitmq-c: one owner thread per connection; no C type above it.
        .target(name: "AMQP", dependencies: ["CRabbitMQ", "CRabbitMQShim", "WakePipe", "AMQPTypes"]),
        // The pure core: protocol messages and validation, configuration, Wan2.2 command lines,
        // the ledger fold, the intake, the worker's state machine, the fleet view, the artifacts'
        // primitives (SigV4, webhook signatures, address policy, content sniffing). No broker
        // connection, no processes, no networking: everything here is unit-tested without a broker.
        .target(
            name: "GenWorkerCore",
            dependencies: [
                "AMQPTypes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Child processes: spawning in a session, the process tree, the supervisor, the warm
        // runner, the watchdog, a job's run directory, the worker's identity lock.
        .target(
            name: "Supervision",
            dependencies: ["GenWorkerCore", "CProcessShims", "WakePipe", .product(name: "Logging", package: "swift-log")]
        ),
        // The worker: the owner loop and its broker link, the ledger stream, the topology, the
        // fleet follower, metrics. The only layer above the core that talks to the broker.
        .target(
            name: "GenWorker",
            dependencies: [
                "GenWorkerCore", "Supervision", "AMQP", "WakePipe",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Files over HTTP for a job (AsyncHTTPClient, so SwiftNIO): inputs fetched by URL under
        // the egress rules, videos uploaded to an S3-compatible store or a job's presigned URL
        // (`genworker transfer`, a supervised child process), signed webhooks (a service of `genworker run`).
        .target(
            name: "Transfer",
            dependencies: [
                "GenWorkerCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The web side (Hummingbird, so SwiftNIO): the dashboard, the metrics endpoint, and
        // `genworker run`'s service group.
        .target(
            name: "GenWorkerWeb",
            dependencies: [
                "GenWorker", "GenWorkerCore", "Transfer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HummingbirdBasicAuth", package: "hummingbird-auth"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        .executableTarget(
            name: "genworker",
            dependencies: [
                "GenWorkerWeb", "GenWorker", "GenWorkerCore", "AMQP", "Transfer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // Kills a dead worker's generators (see Supervisor/Watchdog.swift).
        .executableTarget(name: "genworker-watchdog"),
        // Benchmark of the AMQP layer (scripts/bench-amqp.sh), not a test.
        .executableTarget(name: "amqp-bench", dependencies: ["AMQP"]),
        // Helpers for the tests: the private broker's address, the repository's paths, child processes.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // A connection to the private broker, for the integration tests.
        .target(name: "BrokerTestSupport", dependencies: ["AMQP", "TestSupport"], path: "Tests/BrokerTestSupport"),
        // Every pure part, without a broker, and without SwiftNIO: `swift test --filter GenWorkerUnitTests`.
        .testTarget(
            name: "GenWorkerUnitTests",
            dependencies: ["GenWorkerCore", "Supervision", "AMQPTypes", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        // The web side's own (real HTTP on a loopback port, no broker).
        .testTarget(
            name: "GenWorkerWebTests",
            dependencies: [
                "GenWorkerWeb", "GenWorkerCore", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Against the private RabbitMQ (scripts/broker.sh) and real child processes.
        .testTarget(name: "AMQPIntegrationTests", dependencies: ["AMQP", "BrokerTestSupport", "TestSupport"]),
        .testTarget(
            name: "GenWorkerIntegrationTests",
            dependencies: [
                "GenWorkerWeb", "GenWorker", "GenWorkerCore", "Supervision", "AMQP", "Transfer", "BrokerTestSupport", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
