import Foundation
import Testing
@testable import ChatBridgeCore

// CHATBRIDGE_LOG_LEVEL and CHATBRIDGE_LOG_FORMAT beside --log-level and --log-format:
// the flags win; a bad value is a usage error.

@Suite("CLI: log level and format from the environment", .timeLimit(.minutes(2)))
struct LogEnvironmentTests {
    /// A source that refuses connections: `run --once` logs its failure and exits 1.
    static func workspace(_ environment: [String: String]) throws -> CLIWorkspace {
        try CLIWorkspace(
            config: CLIWorkspace.sourceYAML(url: "http://127.0.0.1:9/", timeout: "2s"),
            environment: ["E2E_API_KEY": "key_log_env_secret"].merging(environment) { _, new in new })
    }

    static func jsonLines(_ text: String) -> [JSONValue] {
        text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{"), let value = try? JSONValue.parse(String(line)), value.objectValue != nil else { return nil }
            return value
        }
    }

    @Test("CHATBRIDGE_LOG_FORMAT=json logs JSON lines; --log-format text wins over it")
    func format() async throws {
        let json = try await Self.workspace(["CHATBRIDGE_LOG_FORMAT": "json"]).run(["run", "--once"])
        #expect(!Self.jsonLines(json.stderr).isEmpty, "\(json)")
        let text = try await Self.workspace(["CHATBRIDGE_LOG_FORMAT": "json"]).run(["run", "--once", "--log-format", "text"])
        #expect(!text.stderr.isEmpty)
        #expect(Self.jsonLines(text.stderr).isEmpty, "\(text)")
        for result in [json, text] { #expect(!result.stderr.contains("key_log_env_secret")) }
    }

    @Test("CHATBRIDGE_LOG_FORMAT=json makes every command's messages on standard error JSON lines")
    func formatOfEveryCommand() async throws {
        let workspace = try Self.workspace(["CHATBRIDGE_LOG_FORMAT": "json"])
        for arguments in [["explain", "no-such-event"], ["eval", "1 +"], ["rules", "check", "--offline"]] {
            let result = try await workspace.run(arguments)
            let lines = result.stderr.split(separator: "\n")
            #expect(!lines.isEmpty && lines.count == Self.jsonLines(result.stderr).count, "\(arguments): \(result.stderr)")
        }
    }

    static func levels(_ text: String) -> Set<String> {
        Set(jsonLines(text).compactMap { $0["level"]?.stringValue })
    }

    @Test("CHATBRIDGE_LOG_LEVEL sets the level (debug shows debug lines, critical hides warnings); --log-level wins; a bad value exits 2")
    func level() async throws {
        let debug = try await Self.workspace(["CHATBRIDGE_LOG_LEVEL": "debug", "CHATBRIDGE_LOG_FORMAT": "json"]).run(["run", "--once"])
        #expect(Self.levels(debug.stderr).contains("debug"), "\(debug)")
        let quiet = try await Self.workspace(["CHATBRIDGE_LOG_LEVEL": "critical", "CHATBRIDGE_LOG_FORMAT": "json"]).run(["run", "--once"])
        #expect(Self.levels(quiet.stderr).isDisjoint(with: ["debug", "info", "warning"]), "\(quiet)")
        let flag = try await Self.workspace(["CHATBRIDGE_LOG_LEVEL": "debug", "CHATBRIDGE_LOG_FORMAT": "json"])
            .run(["run", "--once", "--log-level", "info"])
        let flagLevels = Self.levels(flag.stderr)
        #expect(flagLevels.contains("info") && !flagLevels.contains("debug"), "\(flag)")
        let bad = try await Self.workspace(["CHATBRIDGE_LOG_LEVEL": "chatty"]).run(["run", "--once"])
        #expect(bad.exitStatus == 2)
        #expect(bad.stderr.contains("CHATBRIDGE_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, not 'chatty'"))
    }
}
