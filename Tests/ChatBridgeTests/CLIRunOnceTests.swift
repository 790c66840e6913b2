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

// `chatbridge run --once` as cron runs it: the built binary, a real simulator on
// 127.0.0.1, a config file and a SQLite store in a temp folder.

extension EndToEndTests {
    @Suite("CLI: run --once against the simulator", .timeLimit(.minutes(2)))
    struct CLIRunOnceTests {
        /// A key no output may ever show.
        let apiKey = "sk-e2e-\(UUID().uuidString)"

        @Test func silentBaselineThenExactlyOneEventThenNothing() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 20, seed: 11)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL, pageSize: 7),
                    environment: ["E2E_API_KEY": apiKey])

                let baseline = try await workspace.run(["run", "--once"])
                #expect(baseline.exitStatus == 0, "\(baseline)")
                #expect(baseline.stdout.isEmpty, "the first poll is a silent baseline: \(baseline.stdout.prefix(300))")

                let chatID = try #require(await simulator.state.chatIDs().dropFirst(4).first)
                let before = try JSONValue.parse(try #require(await simulator.state.chatJSON(id: chatID)))
                let unread = Int64(before["unread_count"]?.doubleValue ?? 0)
                try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": \#(unread + 3)}"#)

                let changed = try await workspace.run(["run", "--once"])
                #expect(changed.exitStatus == 0, "\(changed)")
                try #require(changed.stdoutLines.count == 1, "exactly one JSON line: \(changed.stdout.prefix(2000))")
                let event = try JSONValue.parse(changed.stdoutLines[0])
                #expect(event["type"] == .string("chat.changed"))
                #expect(event["kinds"]?.stringArray.contains("unread.increased") == true, "\(event.compactString.prefix(500))")
                #expect(event["chat_id"] == .string(chatID))
                #expect(event["source"] == .string("main"))
                #expect(event["changes"]?["unread_count"]?["from"] == .int(unread))
                #expect(event["changes"]?["unread_count"]?["to"] == .int(unread + 3))
                #expect(event["rule"] == nil, "with no rules at all, events go to stdout without `rule`")
                let eventID = try #require(event["id"]?.stringValue)

                let stored = try await workspace.storedEvents()
                #expect(stored.compactMap { $0["id"]?.stringValue } == [eventID], "`chatbridge events` lists the same event")

                let again = try await workspace.run(["run", "--once"])
                #expect(again.exitStatus == 0, "\(again)")
                #expect(again.stdout.isEmpty, "nothing is reported twice: \(again.stdout.prefix(500))")

                for result in [baseline, changed, again] {
                    #expect(!result.stdout.contains(apiKey) && !result.stderr.contains(apiKey), "the API key leaked")
                }
            }
        }

        @Test func aFailedPageExitsOneNamingSourceAndPageThenTheChangeComesOnce() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 30, seed: 12)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL, pageSize: 10),
                    environment: ["E2E_API_KEY": apiKey])
                let baseline = try await workspace.run(["run", "--once"])
                try #require(baseline.exitStatus == 0, "\(baseline)")

                let chatID = try #require(await simulator.state.chatIDs().last)
                try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": 41}"#)
                await simulator.state.addFault(.error(status: 503, type: "errors/service_unavailable", page: 2))

                let failed = try await workspace.run(["run", "--once"])
                #expect(failed.exitStatus == 1, "\(failed)")
                #expect(failed.stdout.isEmpty, "an incomplete poll produces nothing: \(failed.stdout.prefix(500))")
                let messages = failed.stderrLines.filter { $0.hasPrefix("source main: poll failed:") }
                #expect(messages.count == 1, "one line says what failed and where: \(failed.stderr)")
                #expect(messages.first?.contains("page 2") == true, "it names the page: \(messages)")
                #expect(messages.first?.contains("503") == true, "and the status: \(messages)")
                #expect(await simulator.state.stats().byStatus[503] == 1, "run --once does not retry within the run")
                #expect(try await workspace.storedEvents().isEmpty, "a failed poll stores no event")

                let recovered = try await workspace.run(["run", "--once"])
                #expect(recovered.exitStatus == 0, "\(recovered)")
                try #require(recovered.stdoutLines.count == 1, "the change is reported after all: \(recovered.stdout.prefix(1000))")
                let event = try JSONValue.parse(recovered.stdoutLines[0])
                #expect(event["chat_id"] == .string(chatID))
                #expect(event["kinds"]?.stringArray.contains("unread.increased") == true)

                let quiet = try await workspace.run(["run", "--once"])
                #expect(quiet.exitStatus == 0 && quiet.stdout.isEmpty, "and only once: \(quiet)")
                #expect(try await workspace.storedEvents().count == 1)
                for result in [baseline, failed, recovered, quiet] {
                    #expect(!result.stdout.contains(apiKey) && !result.stderr.contains(apiKey), "the API key leaked")
                }
            }
        }

        @Test func aWrongKeyIsOneAccountErrorAcrossRuns() async throws {
            let wrongKey = "sk-e2e-wrong-\(UUID().uuidString)"
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 5, seed: 13)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL),
                    environment: ["E2E_API_KEY": wrongKey])
                let first = try await workspace.run(["run", "--once"])
                let second = try await workspace.run(["run", "--once"])
                for result in [first, second] {
                    #expect(result.exitStatus == 1, "\(result)")
                    #expect(result.stderrLines.contains { $0.hasPrefix("source main: poll failed:") && $0.contains("401") }, "\(result)")
                }
                // With no rules, the account.error goes to stdout, once.
                #expect(first.stdoutLines.count == 1, "\(first.stdout.prefix(1000))")
                #expect(first.stdoutLines.first.flatMap { try? JSONValue.parse($0) }?["type"] == .string("account.error"))
                #expect(second.stdout.isEmpty, "the outage is reported once, even across restarts: \(second.stdout.prefix(1000))")

                let errors = try await workspace.storedEvents(["--type", "account.error"])
                try #require(errors.count == 1, "exactly one account.error stored: \(errors.map(\.compactString))")
                #expect(errors[0]["error"]?["type"] == .string("errors/invalid_credentials"))
                #expect(errors[0]["error"]?["status"] == .int(401))
                #expect(errors[0]["source"] == .string("main"))
                #expect(try await workspace.storedEvents().count == 1, "and nothing else")

                let listing = try await workspace.run(["events"])
                for result in [first, second, listing] {
                    #expect(!result.stdout.contains(wrongKey) && !result.stderr.contains(wrongKey), "the API key leaked")
                }
            }
        }
    }
}
