// swift-tools-version:6.1
import PackageDescription

/// `swift build -c release` links the Swift runtime and Foundation into `chatbridge`
/// (as `scripts/release`'s `--static-swift-stdlib` build does), on Linux: no dynamic
/// loader resolving some 11,000 symbols of libswiftCore and the four Foundation
/// libraries at every start, and only the pages used are read. `run --once` on 100
/// unchanged chats: about 5 ms less CPU and 3 MB less peak RSS. Only the link changes
/// (every module compiles as before), so the Foundation archives are named here; debug
/// builds and the tests stay dynamic.
#if canImport(Glibc)
import Glibc
/// Whether this machine's C library loads DT_RELR relocations (glibc 2.36 and later).
let libcLoadsPackedRelocations: Bool = {
    // confstr answers "glibc 2.36".
    var text = [CChar](repeating: 0, count: 64)
    guard confstr(Int32(_CS_GNU_LIBC_VERSION), &text, text.count) > 0 else { return false }
    let name = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard name.hasPrefix("glibc ") else { return false }
    let version = name.dropFirst(6).split(separator: ".").compactMap { Int($0) }
    return version.count >= 2 && (version[0], version[1]) >= (2, 36)
}()
#else
let libcLoadsPackedRelocations = false
#endif

let staticSwiftRuntimeInRelease: [LinkerSetting] = {
    let release = BuildSettingCondition.when(platforms: [.linux], configuration: .release)
    let foundationArchives = [
        "Foundation", "CoreFoundation", "FoundationInternationalization", "FoundationEssentials",
        "_FoundationCollections", "_FoundationCShims", "_FoundationICU", "swiftSynchronization",
    ]
    // With glibc 2.36 or later (DT_RELR), lld packs the executable's relative relocations:
    // the loader reads a few kilobytes instead of 3.5 MB of `.rela.dyn` at each start, and
    // an unchanged 100k poll peaks 2 MB lower. An older C library could not load such a
    // binary, so it then keeps the default linker.
    let packedRelocations = libcLoadsPackedRelocations
        ? ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"] : []
    return [.unsafeFlags(["-static-stdlib"] + packedRelocations, release)]
        + foundationArchives.map { .linkedLibrary($0, release) }
}()

let package = Package(
    name: "chatbridge",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chatbridge", targets: ["chatbridge"]),
        .library(name: "CEL", targets: ["CEL"]),
        .library(name: "UnipileSimulator", targets: ["UnipileSimulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.20.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        // The Common Expression Language: lexer, parser, checker, evaluator. Knows nothing of chats.
        .target(name: "CEL", dependencies: ["CRE2"]),
        // RE2, the linear-time regular expressions that define CEL's `matches`, behind a
        // small C interface (needs Debian's libre2-dev to build, libre2 to run).
        .target(name: "CRE2", linkerSettings: [.linkedLibrary("re2")]),
        // Where a JSON value ends, found 64 bytes at a time with vector instructions (SSE2 on
        // x86-64, NEON on ARM64): the first step of recognising an unchanged chat by its bytes.
        .target(name: "CJSONStructure"),

        // A fake Unipile "List all chats" endpoint with a control API, for demo, tests and benchmarks.
        .target(
            name: "UnipileSimulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The stages of the flow, each a target, so that the compiler refuses a backward import:
        //
        //   ChatBridgeCore → ChatBridgeConfig → UnipileScanner → Unipile → Detect → Formats → Rules → Store
        //     → StoreSQLite → Delivery → Runtime → chatbridge
        //
        // Values every stage shares: JSON, timestamps, ids, secrets, durations, the Event model.
        .target(name: "ChatBridgeCore"),
        // The configuration file: YAML with marks, ${VAR}, defaults, FILE:LINE:COLUMN diagnostics.
        .target(
            name: "ChatBridgeConfig",
            dependencies: ["ChatBridgeCore", .product(name: "Yams", package: "Yams")]
        ),
        // Pure: a page of "List all chats" scanned for its items and their raw bytes,
        // without decoding them (a target of its own so that fuzzing builds no network stack).
        .target(name: "UnipileScanner", dependencies: ["ChatBridgeCore", "CJSONStructure"]),
        // One HTTP answer read on the event loop, the body bounded: the poll's pages and the sinks' answers.
        .target(
            name: "HTTPCollection",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The Unipile API: the client, paging, rate limit.
        .target(
            name: "Unipile",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "UnipileScanner", "HTTPCollection",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Pure: the previous snapshot and this poll's chats in, events out (events.md).
        .target(name: "Detect", dependencies: ["ChatBridgeCore"]),
        // Pure: how an event reads as text or a webhook body (templates, summary, formats).
        .target(
            name: "Formats",
            dependencies: ["ChatBridgeCore", "ChatBridgeConfig", .product(name: "Mustache", package: "swift-mustache")]
        ),
        // Pure: rule files, CEL conditions, routing, and every rule policy as a decision.
        .target(
            name: "Rules",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "CEL", "Detect", "Formats",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The store interface: one poll session, the outbox, and the values they exchange.
        .target(name: "Store", dependencies: ["ChatBridgeCore", "Detect", "Rules"]),
        // The SQLite store: the only target that imports GRDB.
        .target(
            name: "StoreSQLite",
            dependencies: [
                "ChatBridgeCore", "Detect", "Rules", "Store",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the one loop that reads every chat of a snapshot.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The PostgreSQL store, shared by several instances: the only target that imports PostgresNIO.
        .target(
            name: "StorePostgres",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "Detect", "Rules", "Store",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The dispatcher, sinks, signing and retry schedule.
        .target(
            name: "Delivery",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "Formats", "Rules", "Store", "HTTPCollection",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Assembles the services: pollers, dispatcher, retention, /metrics and /healthz, reload, shutdown.
        .target(
            name: "Runtime",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "UnipileScanner", "Unipile", "Detect", "Formats", "Rules", "Store",
                "StoreSQLite", "StorePostgres", "Delivery",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),

        // The command line: parses arguments, calls the library, maps errors to exit codes.
        .executableTarget(
            name: "chatbridge",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "Unipile", "Detect", "Formats", "Rules", "Store",
                "StoreSQLite", "StorePostgres", "Delivery", "Runtime", "UnipileSimulator", "CEL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            linkerSettings: staticSwiftRuntimeInRelease
        ),

        // Benchmarks of the rules stage: `swift run -c release chatbridge-bench`.
        .executableTarget(
            name: "chatbridge-bench",
            dependencies: ["ChatBridgeCore", "ChatBridgeConfig", "UnipileScanner", "Detect", "Rules", "Store", "StoreSQLite", "CEL"]
        ),

        // libFuzzer targets (`scripts/fuzz`); without the fuzzer, a replay of inputs.
        .executableTarget(
            name: "chatbridge-fuzz",
            dependencies: ["ChatBridgeCore", "ChatBridgeConfig", "UnipileScanner", "Formats", "Rules"]
        ),

        .testTarget(name: "CELTests", dependencies: ["CEL"]),
        .testTarget(name: "UnipileSimulatorTests", dependencies: ["UnipileSimulator"]),
        .testTarget(
            name: "ChatBridgeTests",
            dependencies: [
                "ChatBridgeCore", "ChatBridgeConfig", "Unipile", "UnipileScanner", "CJSONStructure", "Detect", "Formats", "Rules",
                "Store", "StoreSQLite", "StorePostgres", "Delivery", "Runtime", "UnipileSimulator", "CEL", "chatbridge",
                "chatbridge-fuzz",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
