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

// SIGHUP: a reload with errors keeps the running set; a good one takes effect. And the
// secrets of a run that used them never appear in its logs, even at debug level.

extension EndToEndTests {
    @Suite("CLI: reload and secrets in logs", .timeLimit(.minutes(2)))
    struct CLIReloadTests {
        let apiKey = "sk-e2e-reload-\(UUID().uuidString)"
        let signingSecret = "whsec_" + Data("reload-signing-secret-0123456789".utf8).base64EncodedString()

        @Test func reloadKeepsTheLastGoodSetThenTakesANewOneAndNoSecretIsLogged() async throws {
            try await WebhookRecorder.withRunning { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 6, seed: 41)) { simulator in
                    let hookURL = recorder.url + "?token=hook-token-\(UUID().uuidString)"
                    let config = CLIWorkspace.sourceYAML(url: simulator.baseURL) + """
                        sinks:
                          hook:
                            type: webhook
                            url: ${E2E_HOOK_URL}
                            secret: ${E2E_SIGNING_SECRET}
                        """
                    let firstRule = "name: first\non: [unread.increased]\nwhen: \"true\"\nsend: [hook]\n"
                    let workspace = try CLIWorkspace(
                        config: config, rules: ["rule.yaml": firstRule],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": hookURL, "E2E_SIGNING_SECRET": signingSecret])
                    let rulePath = workspace.directory.file("rules/rule.yaml")
                    let ids = await simulator.state.chatIDs()
                    let result = try await workspace.withStarted(["run", "--log-level", "debug"]) { child in
                        let baselined = await eventually(timeout: .seconds(15)) {
                            (try? await workspace.run(["chats"]).stdoutLines.count) == 6
                        }
                        try #require(baselined, "baseline: \(child.standardErrorSoFar)")

                        // A broken rule file: the reload is refused with its place, the old rule goes on.
                        try Data("name: first\non: [unread.increased]\nwhen: \"chat.unread_count >\"\nsend: [hook]\n".utf8)
                            .write(to: URL(fileURLWithPath: rulePath))
                        child.send(SIGHUP)
                        let refused = await eventually(timeout: .seconds(10)) {
                            child.standardErrorSoFar.contains("reload refused") && child.standardErrorSoFar.contains("rule.yaml:3:")
                        }
                        #expect(refused, "the refusal names FILE:LINE:COLUMN: \(child.standardErrorSoFar)")
                        try await simulator.state.patch(id: ids[0], fieldsJSON: #"{"unread_count": 7}"#)
                        let delivered = await eventually(timeout: .seconds(10)) { await recorder.requests.count == 1 }
                        #expect(delivered, "the last good rule still delivers")
                        #expect(await recorder.requests.first.map { String(decoding: $0.body, as: UTF8.self).contains("\"rule\":\"first\"") } == true)

                        // A good new rule: it takes effect.
                        try Data("name: second\non: [chat.renamed]\nwhen: \"true\"\nsend: [hook]\n".utf8)
                            .write(to: URL(fileURLWithPath: rulePath))
                        child.send(SIGHUP)
                        let reloaded = await eventually(timeout: .seconds(10)) {
                            child.standardErrorSoFar.contains("reloaded:")
                        }
                        #expect(reloaded, "\(child.standardErrorSoFar)")
                        try await simulator.state.patch(id: ids[1], fieldsJSON: #"{"name": "Renamed after reload"}"#)
                        try await simulator.state.patch(id: ids[2], fieldsJSON: #"{"unread_count": 9}"#)
                        let second = await eventually(timeout: .seconds(10)) { await recorder.requests.count >= 2 }
                        #expect(second)
                        try await Task.sleep(for: .milliseconds(600))
                        let bodies = await recorder.requests.map { String(decoding: $0.body, as: UTF8.self) }
                        #expect(bodies.count == 2, "the unread change no longer matches any rule: \(bodies)")
                        #expect(bodies.last?.contains("\"rule\":\"second\"") == true)

                        child.send(SIGTERM)
                        return await child.finish(timeout: .seconds(10))
                    }
                    #expect(result.exitStatus == 0, "\(result.stderr)")
                    let output = result.stdout + result.stderr
                    for secret in [apiKey, hookURL, signingSecret, String(hookURL.split(separator: "=").last ?? "")] {
                        #expect(!output.contains(secret), "a secret appears in the output of the run")
                    }
                }
            }
        }
    }
}
