// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "chatbridge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chatbridge", targets: ["chatbridge"]),
        .library(name: "ChatBridge", targets: ["ChatBridge"]),
        .library(name: "CEL", targets: ["CEL"]),
        .library(name: "UnipileSimulator", targets: ["UnipileSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // The Common Expression Language: lexer, parser, checker, evaluator. Knows nothing of chats.
        .target(name: "CEL"),

        // A fake Unipile "List all chats" endpoint with a control API, for demo, tests and benchmarks.
        .target(
            name: "UnipileSimulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The engine: config, Unipile client, store, detection, rules, delivery, runtime.
        .target(
            name: "ChatBridge",
            dependencies: [
                "CEL",
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // The command line: parses arguments, calls the library, maps errors to exit codes.
        .executableTarget(
            name: "chatbridge",
            dependencies: [
                "ChatBridge",
                "UnipileSimulator",
                "CEL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Benchmarks of the rules stage: `swift run -c release chatbridge-bench`.
        .executableTarget(name: "chatbridge-bench", dependencies: ["ChatBridge", "CEL"]),

        .testTarget(name: "CELTests", dependencies: ["CEL"]),
        .testTarget(name: "UnipileSimulatorTests", dependencies: ["UnipileSimulator"]),
        .testTarget(
            name: "ChatBridgeTests",
            dependencies: ["ChatBridge", "UnipileSimulator", "CEL", "chatbridge"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
