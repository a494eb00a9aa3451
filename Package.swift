// swift-tools-version:6.0
import PackageDescription

// Linux only: the worker relies on /proc, prctl(PR_SET_CHILD_SUBREAPER), pidfd_open and
// posix_spawn's GNU extensions, so no Apple platform is listed.
let package = Package(
    name: "genworker",
    products: [
        .executable(name: "genworker", targets: ["genworker"]),
        .library(name: "AMQP", targets: ["AMQP"]),
        .library(name: "GenWorker", targets: ["GenWorker"]),
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
        .target(name: "AMQP", dependencies: ["CRabbitMQ", "CRabbitMQShim", "WakePipe"]),
        .target(
            name: "GenWorker",
            dependencies: [
                "AMQP", "WakePipe", "CProcessShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
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
                "GenWorker", "AMQP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Kills a dead worker's generators (see Supervisor/Watchdog.swift).
        .executableTarget(name: "genworker-watchdog"),
        // Benchmark of the AMQP layer (scripts/bench-amqp.sh), not a test.
        .executableTarget(name: "amqp-bench", dependencies: ["AMQP"]),
        // Helpers for the tests: the private broker, the repository's paths, child processes.
        .target(name: "TestSupport", dependencies: ["AMQP"], path: "Tests/TestSupport"),
        // Every pure part, without a broker: `swift test --filter GenWorkerUnitTests`.
        .testTarget(
            name: "GenWorkerUnitTests",
            dependencies: [
                "GenWorker", "AMQP", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Against the private RabbitMQ (scripts/broker.sh) and real child processes.
        .testTarget(name: "AMQPIntegrationTests", dependencies: ["AMQP", "TestSupport"]),
        .testTarget(
            name: "GenWorkerIntegrationTests",
            dependencies: ["GenWorker", "AMQP", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
