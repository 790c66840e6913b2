import Foundation
import Hummingbird
import Testing
@testable import ChatBridgeCore
@testable import Formats

// `chatbridge sinks list` and `chatbridge sinks test NAME`, as real child processes
// against a real receiver.

@Suite("CLI: sinks list and sinks test", .timeLimit(.minutes(2)))
struct SinksCommandTests {
    static func config(origin: String) -> String {
        CLIWorkspace.sourceYAML(url: "http://127.0.0.1:9/") + """
            sinks:
              phone:
                type: http
                url: \(origin)/bot${TEST_BOT_TOKEN}/sendMessage
                headers:
                  Authorization: Bearer ${TEST_HEADER_TOKEN}
                body: '{"chat_id": "${TEST_CHAT_ID}", "text": "{{summary}}"}'
              refused:
                type: http
                url: \(origin)/refuse/${TEST_BOT_TOKEN}
              team:
                type: webhook
                url: \(origin)/hooks/${TEST_BOT_TOKEN}
                format: slack

            """
    }

    static let environment = [
        "E2E_API_KEY": "key_e2e_secret", "TEST_BOT_TOKEN": "bot_token_secret_42",
        "TEST_HEADER_TOKEN": "header_token_secret_43", "TEST_CHAT_ID": "chat_id_secret_44",
    ]
    static let secrets = ["key_e2e_secret", "bot_token_secret_42", "header_token_secret_43", "chat_id_secret_44"]

    static let rules = [
        "a.yaml": """
            rules:
              - name: vip
                on: [chat.changed]
                send: [phone, team]
              - name: all
                on: [chat.added]
                send: [phone]
            """,
    ]

    @Test("sinks list: each sink, its type, the rules sending to it; no URL or secret")
    func list() async throws {
        let workspace = try CLIWorkspace(config: Self.config(origin: "http://127.0.0.1:9"), rules: Self.rules, environment: Self.environment)
        let result = try await workspace.run(["sinks", "list"])
        #expect(result.exitStatus == 0, "\(result)")
        let lines = try result.stdoutLines.map { try JSONValue.parse($0) }
        #expect(lines.map { $0["sink"] } == ["phone", "refused", "stdout", "team"])
        #expect(lines[0]["type"] == "http" && lines[0]["method"] == "POST" && lines[0]["rules"] == ["vip", "all"])
        #expect(lines[1]["rules"] == [])
        #expect(lines[3]["type"] == "webhook" && lines[3]["format"] == "slack" && lines[3]["rules"] == ["vip"])
        for secret in Self.secrets + ["127.0.0.1"] { #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret)) }
    }

    @Test("sinks test: sends a sample for real, prints the request and response without secrets, records nothing; 0 only when delivered")
    func test() async throws {
        let script: ReceiverScript = { request, _ in
            request.path.hasPrefix("/refuse/") ? receiverResponse(403, "forbidden for bot_token_secret_42") : receiverResponse(200, #"{"ok":true}"#)
        }
        try await withAnyMethodReceiver(script) { origin, _, log in
            let workspace = try CLIWorkspace(config: Self.config(origin: origin), rules: Self.rules, environment: Self.environment)
            let sent = try await workspace.run(["sinks", "test", "phone"])
            #expect(sent.exitStatus == 0, "\(sent)")
            #expect(sent.stdout.contains("request: POST \(origin)/… (path and query hidden)"))
            #expect(sent.stdout.contains("headers: ") && sent.stdout.contains("Authorization"))
            #expect(sent.stdout.contains("response: HTTP 200"))
            #expect(sent.stdout.contains(#"response body: {"ok":true}"#))
            #expect(sent.stdoutLines.last == "delivered (200)")
            let received = try #require(await log.requests.first)
            #expect(received.path == "/botbot_token_secret_42/sendMessage")
            #expect(received.json?["chat_id"] == "chat_id_secret_44")
            #expect(received.json?["text"]?.stringValue?.contains("Jane Doe: 3 unread (was 0)") == true)

            let refused = try await workspace.run(["sinks", "test", "refused"])
            #expect(refused.exitStatus == 1, "\(refused)")
            #expect(refused.stdout.contains("response: HTTP 403"))
            #expect(refused.stderr.contains("not delivered (a delivery would be dead): sink refused: HTTP 403"))

            let eventFile = workspace.directory.file("event.json")
            try Data(#"{"type":"chat.added","source":"main","chat":{"id":"c9","account_id":"a1","account_type":"WHATSAPP","name":"Bob \"B\"","unread_count":2}}"#.utf8)
                .write(to: URL(fileURLWithPath: eventFile))
            let given = try await workspace.run(["sinks", "test", "team", "--event", eventFile])
            #expect(given.exitStatus == 0, "\(given)")
            let hook = try #require(await log.requests.last)
            #expect(hook.json?["text"]?.stringValue == "WhatsApp · Bob \"B\": new chat, 2 unread")

            let unknown = try await workspace.run(["sinks", "test", "nope"])
            #expect(unknown.exitStatus == 2)
            #expect(unknown.stderr.contains("no sink named 'nope'"))

            for result in [sent, refused, given, unknown] {
                for secret in Self.secrets {
                    #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret), "\(secret) in \(result)")
                }
            }
            // Nothing recorded: no store was even created.
            #expect(!FileManager.default.fileExists(atPath: workspace.directory.file("state/chatbridge.sqlite")))
        }
    }

    @Test("a JSON body that cannot render to JSON stops the command with FILE:LINE:COLUMN, exit 2")
    func refusedAtLoad() async throws {
        let workspace = try CLIWorkspace(config: CLIWorkspace.sourceYAML(url: "http://127.0.0.1:9/") + """
            sinks:
              broken:
                type: http
                url: https://example.com/
                body: '{"text": {{chat.name}}}'

            """, environment: Self.environment)
        for arguments in [["sinks", "list"], ["rules", "check"]] {
            let result = try await workspace.run(arguments)
            #expect(result.exitStatus == 2, "\(result)")
            #expect(result.stderr.contains("\(workspace.configPath):14:11: sinks.broken.body: content_type application/json needs JSON"), "\(result)")
        }
    }
}
