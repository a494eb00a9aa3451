// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "genworker",
    platforms: [.macOS(.v15)],
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
    ],
    targets: [
        // rabbitmq-c 0.11 from the system (Debian: librabbitmq-dev).
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        // What Swift cannot call: variadic C (amqp_login, prctl) and a few socket options.
        .target(name: "CRabbitMQShim", dependencies: ["CRabbitMQ"]),
        .target(name: "AMQP", dependencies: ["CRabbitMQ", "CRabbitMQShim"]),
        .target(
            name: "GenWorker",
            dependencies: [
                "AMQP", "CRabbitMQShim",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "genworker",
            dependencies: [
                "GenWorker", "AMQP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Helpers for the tests: the private broker, the repository's paths, child processes.
        .target(name: "TestSupport", dependencies: ["AMQP"], path: "Tests/TestSupport"),
        // Kills a dead worker's generators (see Supervisor/ProcessTree.swift).
        .executableTarget(name: "genworker-watchdog"),
        // Benchmark of the AMQP layer (scripts/bench-amqp.sh), not a test.
        .executableTarget(name: "amqp-bench", dependencies: ["AMQP"]),
        .testTarget(name: "AMQPTests", dependencies: ["AMQP", "TestSupport"]),
        .testTarget(name: "GenWorkerTests", dependencies: ["GenWorker", "AMQP", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
