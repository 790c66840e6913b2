import AsyncHTTPClient
import Foundation
import Hummingbird
import Synchronization
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - A config folder

/// A temp folder holding `chatbridge.yaml` (not in a `config/` folder, so relative paths
/// in it are relative to the folder itself), optional rule files under `rules/`, and the
/// environment its `${VAR}`s need; runs `chatbridge` subcommands with `--config` set.
///
/// ```swift
/// let workspace = try CLIWorkspace(config: CLIWorkspace.sourceYAML(url: simulator.baseURL),
///                                  environment: ["E2E_API_KEY": key])
/// let result = try await workspace.run(["run", "--once"])
/// let events = try await workspace.storedEvents()
/// ```
struct CLIWorkspace: Sendable {
    let directory: TemporaryDirectory
    let configPath: String
    let environment: [String: String]

    init(config: String, rules: [String: String] = [:], environment: [String: String] = [:]) throws {
        directory = TemporaryDirectory("chatbridge-e2e")
        configPath = directory.file("chatbridge.yaml")
        self.environment = environment
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        if !rules.isEmpty {
            try FileManager.default.createDirectory(atPath: directory.file("rules"), withIntermediateDirectories: true)
            for (name, text) in rules {
                try Data(text.utf8).write(to: URL(fileURLWithPath: directory.file("rules/\(name)")))
            }
        }
    }

    /// A `sources:` list with one source `main`, its key from `${E2E_API_KEY}`, no rate limit.
    static func sourceYAML(url: String, interval: String = "200ms", pageSize: Int = 250, timeout: String = "5s") -> String {
        """
        sources:
          - name: main
            url: \(url)
            api_key: ${E2E_API_KEY}
            interval: \(interval)
            page_size: \(pageSize)
            timeout: \(timeout)
            max_requests_per_second: 0
        store: state/chatbridge.sqlite

        """
    }

    /// `chatbridge ARGUMENTS --config FILE` to its end.
    func run(
        _ arguments: [String], extraEnvironment: [String: String] = [:], input: TestChild.Input = .none,
        timeout: Duration = .seconds(30)
    ) async throws -> TestChild.Result {
        try await ChatBridgeCLI.run(
            arguments + ["--config", configPath], environment: environment.merging(extraEnvironment) { _, new in new },
            input: input, timeout: timeout)
    }

    /// Starts `chatbridge ARGUMENTS --config FILE`; the caller finishes or kills it.
    func start(_ arguments: [String], output: TestChild.Output = .captured) throws -> TestChild {
        try ChatBridgeCLI.start(arguments + ["--config", configPath], environment: environment, output: output)
    }

    /// As ``start(_:output:)``, killing the child after `body` if it still runs.
    func withStarted<T>(
        _ arguments: [String], output: TestChild.Output = .captured, _ body: (TestChild) async throws -> T
    ) async throws -> T {
        try await ChatBridgeCLI.withStarted(
            arguments + ["--config", configPath], environment: environment, output: output, body)
    }

    /// The JSON lines a read-only command prints; it must exit 0.
    func jsonLines(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [JSONValue] {
        let result = try await run(arguments, timeout: .seconds(20))
        try #require(result.exitStatus == 0, "\(result)", sourceLocation: sourceLocation)
        return try result.stdoutLines.map { try JSONValue.parse($0) }
    }

    /// `chatbridge events FILTERS`.
    func storedEvents(_ filters: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [JSONValue] {
        try await jsonLines(["events"] + filters, sourceLocation: sourceLocation)
    }

    /// `chatbridge deliveries FILTERS`.
    func deliveries(_ filters: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [JSONValue] {
        try await jsonLines(["deliveries"] + filters, sourceLocation: sourceLocation)
    }
}

/// Checks `condition` every `interval` until it holds or `timeout` passes; whether it held.
func eventually(
    timeout: Duration, interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

extension JSONValue {
    /// The strings of an array value (`kinds`).
    var stringArray: [String] { arrayValue?.compactMap(\.stringValue) ?? [] }
}
