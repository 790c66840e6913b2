import Foundation
import Testing
import UnipileSimulator
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

// Config and rule files through the built binary: what a user sees on a mistake, `init`,
// `rules check`, and `events | rules test` as a real pipe between two processes.

extension EndToEndTests {
    @Suite("CLI: config errors, init, rules check and rules test", .timeLimit(.minutes(2)))
    struct CLIConfigTests {
        /// One broken config: the YAML, and where and what the one problem is.
        struct BrokenConfig: Sendable, CustomTestStringConvertible {
            var name: String
            var yaml: String
            var line: Int
            var column: Int
            var mentions: String
            /// The problem is only an unset secret: read-only commands do not mind it.
            var onlyASecretIsUnset = false
            var testDescription: String { name }
        }

        static let apiKey = "sk-e2e-config-\(UUID().uuidString)"
        static let hookURL = "https://hooks.example.com/services/T000/B000/\(UUID().uuidString)"

        static let brokenConfigs: [BrokenConfig] = [
            BrokenConfig(
                name: "unknown key",
                yaml: """
                    sources:
                      - name: main
                        url: http://127.0.0.1:9
                        api_key: ${E2E_API_KEY}
                        acount_type: LINKEDIN
                    sinks:
                      hook: {type: webhook, url: "${E2E_HOOK_URL}"}

                    """,
                line: 5, column: 5, mentions: "acount_type"),
            BrokenConfig(
                name: "bad duration",
                yaml: """
                    sources:
                      - name: main
                        url: http://127.0.0.1:9
                        api_key: ${E2E_API_KEY}
                        interval: 5 minutes
                    sinks:
                      hook: {type: webhook, url: "${E2E_HOOK_URL}"}

                    """,
                line: 5, column: 15, mentions: "interval"),
            BrokenConfig(
                name: "missing variable",
                yaml: """
                    sources:
                      - name: main
                        url: http://127.0.0.1:9
                        api_key: ${E2E_API_KEY}
                    sinks:
                      hook:
                        type: webhook
                        url: ${E2E_HOOK_URL}
                        secret: ${E2E_NOT_SET_ANYWHERE}

                    """,
                line: 9, column: 13, mentions: "E2E_NOT_SET_ANYWHERE", onlyASecretIsUnset: true),
        ]

        @Test(arguments: brokenConfigs)
        func configErrorsExitTwoWithFileLineColumnAndNoSecret(_ broken: BrokenConfig) async throws {
            let workspace = try CLIWorkspace(
                config: broken.yaml, environment: ["E2E_API_KEY": Self.apiKey, "E2E_HOOK_URL": Self.hookURL])
            let commands = broken.onlyASecretIsUnset ? [["run", "--once"], ["run"]]
                : [["run", "--once"], ["run"], ["events"]]
            for command in commands {
                let result = try await workspace.run(command, timeout: .seconds(15))
                #expect(result.exitStatus == 2, "\(command): \(result)")
                #expect(result.stdout.isEmpty, "\(command): data only on stdout")
                #expect(result.stderrLines.count == 1, "\(command): one line: \(result.stderr)")
                let expectedPrefix = "\(workspace.configPath):\(broken.line):\(broken.column): "
                #expect(result.stderrLines.first?.hasPrefix(expectedPrefix) == true, "\(command): \(result.stderr) does not start with \(expectedPrefix)")
                #expect(result.stderr.contains(broken.mentions), "\(command): \(result.stderr)")
                #expect(!result.stderr.contains(Self.apiKey), "\(command): the API key leaked")
                #expect(!result.stderr.contains(Self.hookURL) && !result.stderr.contains("B000/"), "\(command): the webhook URL leaked")
            }
        }

        @Test func initWritesTwoFilesRefusesToOverwriteAndRulesCheckSeesProblems() async throws {
            let directory = TemporaryDirectory("chatbridge-e2e-init")
            let target = directory.file("bridge")
            let configPath = target + "/config/chatbridge.yaml"
            let rulePath = target + "/rules/linkedin-inmail-unread.yaml"
            let accountRulePath = target + "/rules/account-problems.yaml"

            let first = try await ChatBridgeCLI.run(["init", target], timeout: .seconds(15))
            #expect(first.exitStatus == 0, "\(first)")
            #expect(first.stdout.isEmpty, "init reports on stderr")
            let config = try Data(contentsOf: URL(fileURLWithPath: configPath))
            let rule = try Data(contentsOf: URL(fileURLWithPath: rulePath))
            #expect(config == Data(ChatBridgeConfiguration.starterConfigYAML.utf8))
            #expect(rule == Data(ChatBridgeConfiguration.starterRuleYAML.utf8))
            let written = try FileManager.default.contentsOfDirectory(atPath: target).sorted()
            #expect(written == ["config", "rules", "schema"])
            #expect(try Data(contentsOf: URL(fileURLWithPath: target + "/schema/chatbridge.schema.json")) == Data(ConfigurationSchema.configJSON.utf8))
            #expect(try Data(contentsOf: URL(fileURLWithPath: target + "/schema/rule.schema.json")) == Data(ConfigurationSchema.ruleJSON.utf8))
            #expect(String(decoding: config, as: UTF8.self).hasPrefix("# yaml-language-server: $schema=../schema/chatbridge.schema.json\n"))
            #expect(String(decoding: rule, as: UTF8.self).hasPrefix("# yaml-language-server: $schema=../schema/rule.schema.json\n"))

            // A recognisable change, so that an overwrite would show.
            try (Data("# mine\n".utf8) + rule).write(to: URL(fileURLWithPath: rulePath))
            let ruleBefore = try Data(contentsOf: URL(fileURLWithPath: rulePath))
            let modifiedBefore = try FileManager.default.attributesOfItem(atPath: configPath)[.modificationDate] as? Date
            let second = try await ChatBridgeCLI.run(["init", target], timeout: .seconds(15))
            #expect(second.exitStatus == 1, "\(second)")
            #expect(
                second.stderrLines == ["not overwriting \(configPath), \(rulePath), \(accountRulePath), \(target)/schema/chatbridge.schema.json, \(target)/schema/rule.schema.json: remove them first or choose another folder"],
                "\(second)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: rulePath)) == ruleBefore, "nothing changed")
            #expect(try Data(contentsOf: URL(fileURLWithPath: configPath)) == config, "nothing changed")
            #expect(try FileManager.default.attributesOfItem(atPath: configPath)[.modificationDate] as? Date == modifiedBefore)

            let key = ["UNIPILE_API_KEY": "sk-e2e-init-\(UUID().uuidString)"]
            let check = try await ChatBridgeCLI.run(["rules", "check", "--config", configPath], environment: key, timeout: .seconds(15))
            #expect(check.exitStatus == 0, "the starter files are valid as written: \(check)")

            let withoutKey = try await ChatBridgeCLI.run(["rules", "check", "--config", configPath], timeout: .seconds(15))
            #expect(withoutKey.exitStatus == 2, "\(withoutKey)")
            #expect(withoutKey.stderr.contains("\(configPath):"), "\(withoutKey)")
            #expect(withoutKey.stderr.contains("UNIPILE_API_KEY"), "\(withoutKey)")

            // A sink that does not exist: reported at the rule file's `send` line.
            let ruleText = String(decoding: ruleBefore, as: UTF8.self)
            let unknownSink = ruleText.replacingOccurrences(of: "send: [stdout]", with: "send: [no-such-sink]")
            try #require(unknownSink != ruleText)
            try Data(unknownSink.utf8).write(to: URL(fileURLWithPath: rulePath))
            let sendLine = try #require(unknownSink.split(separator: "\n", omittingEmptySubsequences: false)
                .firstIndex { $0.hasPrefix("send:") }) + 1
            let broken = try await ChatBridgeCLI.run(["rules", "check", "--config", configPath], environment: key, timeout: .seconds(15))
            #expect(broken.exitStatus == 2, "\(broken)")
            let located = broken.stderrLines.filter { $0.hasPrefix("\(rulePath):\(sendLine):") }
            #expect(located.count == 1, "FILE:LINE:COLUMN of the unknown sink (line \(sendLine)): \(broken.stderr)")
            #expect(located.first?.contains("no-such-sink") == true, "\(broken.stderr)")
            #expect(!broken.stderr.contains(key["UNIPILE_API_KEY"]!))

            // A CEL syntax error.
            let badCondition = ruleText.replacingOccurrences(of: "chat.unread_count > 0", with: "chat.unread_count > > 0")
            try #require(badCondition != ruleText)
            try Data(badCondition.utf8).write(to: URL(fileURLWithPath: rulePath))
            let syntax = try await ChatBridgeCLI.run(["rules", "check", "--config", configPath], environment: key, timeout: .seconds(15))
            #expect(syntax.exitStatus == 2, "\(syntax)")
            let pattern = try Regex("^" + NSRegularExpression.escapedPattern(for: rulePath) + #":[0-9]+:[0-9]+: .*when"#)
            #expect(syntax.stderrLines.contains { $0.contains(pattern) }, "\(syntax.stderr)")
        }

        @Test func storedEventsPipeIntoRulesTest() async throws {
            let apiKey = Self.apiKey
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 6, seed: 21)) { simulator in
                let rules = [
                    "every-added.yaml": """
                        name: every-added
                        on: [chat.added]
                        when: "true"
                        send: [stdout]

                        """,
                    "never.yaml": """
                        name: never
                        when: "false"
                        send: [stdout]

                        """,
                ]
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL) + "baseline: emit\n", rules: rules,
                    environment: ["E2E_API_KEY": apiKey])
                let run = try await workspace.run(["run", "--once"])
                try #require(run.exitStatus == 0, "\(run)")
                #expect(run.stdoutLines.count == 6, "baseline: emit makes every chat a chat.added: \(run.stdout.prefix(500))")
                let newest = try #require(try await workspace.storedEvents(["--limit", "1"]).first)

                // chatbridge events --limit 1 | chatbridge rules test --event -
                var fds: [Int32] = [-1, -1]
                try #require(pipe(&fds) == 0)
                // Only the two children may hold these (through their 0 and 1).
                for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                let writer = try ChatBridgeCLI.start(
                    ["events", "--limit", "1", "--config", workspace.configPath], environment: workspace.environment,
                    output: .descriptor(fds[1]))
                defer { writer.killNow() }
                let reader = try ChatBridgeCLI.start(
                    ["rules", "test", "--event", "-", "--config", workspace.configPath], environment: workspace.environment,
                    input: .descriptor(fds[0]))
                defer { reader.killNow() }
                // Both children hold their ends now; ours would keep the reader from seeing EOF.
                close(fds[0])
                close(fds[1])
                let written = await writer.finish(timeout: .seconds(15))
                let tested = await reader.finish(timeout: .seconds(15))
                #expect(written.exitStatus == 0, "\(written)")
                #expect(tested.exitStatus == 0, "\(tested)")

                let lines = try tested.stdoutLines.map { try JSONValue.parse($0) }
                #expect(lines.count == 2, "one JSON line per rule: \(tested.stdout)")
                let byRule = Dictionary(lines.map { ($0["rule"]?.stringValue ?? "", $0) }) { first, _ in first }
                let matched = try #require(byRule["every-added"])
                #expect(matched["matched"] == .bool(true))
                let send = try #require(matched["sends"]?.arrayValue?.first)
                #expect(send["sink"] == .string("stdout"))
                #expect(send["line"]?["id"] == newest["id"], "the piped event is the one tested")
                #expect(send["line"]?["rule"] == .string("every-added"))
                #expect(byRule["never"]?["matched"] == .bool(false))
                #expect(byRule["never"]?["sends"] == nil)
            }
        }
    }
}
