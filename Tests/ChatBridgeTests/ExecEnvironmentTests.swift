import AsyncHTTPClient
import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Formats

@Suite("Exec sinks: a sealed environment")
struct ExecEnvironmentTests {
    /// What chatbridge itself was started with: secrets beside ordinary variables.
    static let daemonEnvironment = [
        "PATH": "/usr/bin:/bin", "HOME": "/home/bridge", "LANG": "C.UTF-8", "LC_TIME": "de_DE.UTF-8", "TZ": "Europe/Paris",
        "UNIPILE_API_KEY": "sk-live-secret", "WEBHOOK_SECRET": "whsec_c2VjcmV0", "PGPASSWORD": "hunter2",
        "NOTIFY_TOKEN": "token-123", "UNLISTED": "x",
    ]

    private func config(_ sink: String) throws -> ExecSinkConfiguration {
        let configuration = try ChatBridgeConfiguration.parse(
            yaml: """
                sources:
                  - {name: main, url: "http://127.0.0.1:1", api_key: "k"}
                sinks:
                  run:
                \(sink)
                """,
            file: "/srv/bridge/config/chatbridge.yaml", environment: ["EXTRA_VALUE": "from-the-daemon"])
        guard case .exec(let exec) = configuration.sinks["run"]?.kind else {
            Issue.record("not an exec sink")
            return ExecSinkConfiguration(command: .shell("true"))
        }
        return exec
    }

    /// Runs the sink's command once, and returns the environment the child saw.
    private func childEnvironment(_ exec: ExecSinkConfiguration) async throws -> [String: String] {
        let dir = TemporaryDirectory()
        let output = dir.file("env.txt")
        var exec = exec
        exec.command = .arguments(["/bin/sh", "-c", #"env > "$0""#, output])
        let sink = makeSink(
            name: "run", configuration: SinkConfiguration(name: "run", kind: .exec(exec)), httpClient: HTTPClient.shared,
            environment: Self.daemonEnvironment)
        let event = Event(
            id: "0190a0b0-0000-7000-8000-000000000001", type: .chatChanged, kinds: [.unreadIncreased],
            occurredAt: Date(), source: "main", chatID: "c1", chat: ["id": "c1", "name": "Jane"])
        let outcome = await sink.deliver(DeliveryRequest(eventID: event.id, event: event.json(), rule: "vip", sink: "run"))
        #expect(outcome == .delivered(status: 0))
        var seen: [String: String] = [:]
        for line in try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            seen[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return seen
    }

    @Test func aCommandSeesTheBasicsAndTheDeliveryButNoSecret() async throws {
        let seen = try await childEnvironment(try config("    type: exec\n    command: [\"true\"]"))
        #expect(seen["PATH"] == "/usr/bin:/bin")
        #expect(seen["HOME"] == "/home/bridge")
        #expect(seen["LANG"] == "C.UTF-8")
        #expect(seen["LC_TIME"] == "de_DE.UTF-8")
        #expect(seen["TZ"] == "Europe/Paris")
        #expect(seen["CHATBRIDGE_EVENT_ID"] == "0190a0b0-0000-7000-8000-000000000001")
        #expect(seen["CHATBRIDGE_RULE"] == "vip")
        for name in ["UNIPILE_API_KEY", "WEBHOOK_SECRET", "PGPASSWORD", "NOTIFY_TOKEN", "UNLISTED"] {
            #expect(seen[name] == nil, "\(name) must not reach the command")
        }
        #expect(!seen.values.contains("sk-live-secret"))
    }

    @Test func aSinkPassesTheVariablesItNames() async throws {
        let seen = try await childEnvironment(try config("    type: exec\n    command: [\"true\"]\n    env: [NOTIFY_TOKEN, NOT_SET_ANYWHERE]"))
        #expect(seen["NOTIFY_TOKEN"] == "token-123")
        #expect(seen["NOT_SET_ANYWHERE"] == nil, "a listed variable that is not set stays unset")
        #expect(seen["UNIPILE_API_KEY"] == nil)
        #expect(seen["UNLISTED"] == nil)
    }

    @Test func aSinkSetsValuesWithSubstitution() async throws {
        let seen = try await childEnvironment(
            try config("    type: exec\n    command: [\"true\"]\n    env: {GREETING: \"hello world\", FROM_DAEMON: \"${EXTRA_VALUE}\"}"))
        #expect(seen["GREETING"] == "hello world")
        #expect(seen["FROM_DAEMON"] == "from-the-daemon")
        #expect(seen["UNIPILE_API_KEY"] == nil)
    }

    @Test func badVariableNamesAreConfigErrorsWithTheirPlace() throws {
        #expect {
            _ = try config("    type: exec\n    command: [\"true\"]\n    env: [\"GOOD\", \"BAD-NAME\"]")
        } throws: { error in
            "\(error)".contains("chatbridge.yaml:7") && "\(error)".contains("'BAD-NAME' is not a variable name")
        }
        #expect {
            _ = try config("    type: exec\n    command: [\"true\"]\n    env: {\"1ST\": x}")
        } throws: { error in
            "\(error)".contains("'1ST' is not a variable name")
        }
    }
}
