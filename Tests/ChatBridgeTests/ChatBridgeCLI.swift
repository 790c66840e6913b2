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

// MARK: - The chatbridge binary

/// The `chatbridge` executable this test run built, and the ways tests run it.
enum ChatBridgeCLI {
    /// Where the binary is: next to the test bundle (`.build/debug/chatbridgePackageTests.xctest`
    /// on Linux, `.build/debug/chatbridge`), else `<package>/.build/debug/chatbridge`.
    static let executablePath: String = locateExecutable()

    static func locateExecutable(testSourceFile: String = #filePath) -> String {
        var candidates: [String] = []
        for bundle in [Bundle.main] + Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append((bundle.bundlePath as NSString).deletingLastPathComponent + "/chatbridge")
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        candidates.append(runner.deletingLastPathComponent().appendingPathComponent("chatbridge").path)
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("chatbridge").path)
        }
        // Tests/ChatBridgeTests/<this file> -> the package root.
        let packageRoot = URL(fileURLWithPath: testSourceFile).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/chatbridge").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    /// The environment children get: this process's, without any `CHATBRIDGE_*` or
    /// `UNIPILE_*` variable (a developer's own settings must not leak in), plus `extra`.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("CHATBRIDGE_") && !$0.key.hasPrefix("UNIPILE_")
        }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Starts `chatbridge ARGUMENTS`; the caller must finish or kill it (prefer
    /// ``withStarted(_:environment:input:_:)``).
    static func start(
        _ arguments: [String], environment: [String: String] = [:], input: TestChild.Input = .none,
        output: TestChild.Output = .captured
    ) throws -> TestChild {
        try TestChild.start(
            executable: executablePath, arguments: arguments, environment: Self.environment(environment),
            input: input, output: output)
    }

    /// Runs `chatbridge ARGUMENTS` to its end; past `timeout` it is killed (and the result
    /// says so).
    static func run(
        _ arguments: [String], environment: [String: String] = [:], input: TestChild.Input = .none,
        timeout: Duration = .seconds(30)
    ) async throws -> TestChild.Result {
        let child = try start(arguments, environment: environment, input: input)
        return await child.finish(timeout: timeout)
    }

    /// Starts `chatbridge ARGUMENTS`, runs `body` with it, and kills it afterwards if it
    /// still runs, whether `body` returned or threw.
    static func withStarted<T>(
        _ arguments: [String], environment: [String: String] = [:], input: TestChild.Input = .none,
        output: TestChild.Output = .captured, _ body: (TestChild) async throws -> T
    ) async throws -> T {
        let child = try start(arguments, environment: environment, input: input, output: output)
        defer { child.killNow() }
        let result = try await body(child)
        return result
    }
}
