import AsyncHTTPClient
import Foundation
import Hummingbird
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

// Chat content is hostile data (delivery.md, exec; DEVELOPERS.md): names that look like
// shell, markup, mentions and templates go through the built binary to every kind of
// sink. Nothing may run, every body must stay valid JSON, every argv must carry the
// literal name.

extension EndToEndTests {
    @Suite("CLI: hostile chat content through every sink", .timeLimit(.minutes(2)))
    struct CLIHostileInputTests {
        let apiKey = "sk-e2e-hostile-\(UUID().uuidString)"

        /// Exec and webhook sinks of every form, all sent every `chat.added`. (`$$` is the
        /// config's escape of a literal `$`: the shell sees `$$`, its own process id, which
        /// names one file per delivery.)
        static func sinksYAML(argvDirectory: String, shellDirectory: String) -> String {
            """
            sinks:
              echo-argv:
                type: exec
                command: ["/bin/echo", "{{chat.name}}"]
              record-argv:
                type: exec
                command: ["/bin/sh", "-c", "printf '%s' \\"$1\\" > \\"$0/$$$$\\"", "\(argvDirectory)", "{{chat.name}}"]
              shell-string:
                type: exec
                command: "cat > \(shellDirectory)/$$$$.json"
              hook-json:
                type: webhook
                url: ${E2E_HOOK_URL}
                format: json
                headers: {X-E2E-Sink: json}
              hook-slack:
                type: webhook
                url: ${E2E_HOOK_URL}
                format: slack
                template: "{{chat.name}}"
                headers: {X-E2E-Sink: slack}
              hook-discord:
                type: webhook
                url: ${E2E_HOOK_URL}
                format: discord
                template: "{{chat.name}}"
                headers: {X-E2E-Sink: discord}
              hook-teams:
                type: webhook
                url: ${E2E_HOOK_URL}
                format: teams
                template: "{{{chat.name}}}"
                headers: {X-E2E-Sink: teams}

            """
        }

        static let everySink = "[echo-argv, record-argv, shell-string, hook-json, hook-slack, hook-discord, hook-teams]"
        static let rule = "name: hostile\non: [chat.added]\nwhen: \"true\"\nsend: \(everySink)\n"

        /// A chat object like the API's, with `name`.
        static func chat(id: String, name: JSONValue, day: Int) -> JSONValue {
            .object([
                "object": .string("Chat"), "id": .string(id), "account_id": .string("acc_hostile"),
                "account_type": .string("SLACK"), "provider_id": .string("p_\(id)"),
                "attendee_provider_id": .string("a_\(id)"), "name": name, "type": .int(0),
                "timestamp": .string("2031-01-\(String(format: "%02d", day))T00:00:00.000Z"), "unread_count": .int(1),
                "archived": .int(0), "muted_until": .null, "read_only": .int(0), "disabledFeatures": .array([]),
                "subject": .null, "organization_id": .null, "mailbox_id": .null, "content_type": .null,
                "folder": .array([.string("INBOX")]), "pinned": .int(0),
            ])
        }

        /// Slack's escaping, written out here rather than taken from the product.
        static func slackEscaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }

        @Test func hostileNamesRunNothingAndArriveLiterally() async throws {
            let scratch = TemporaryDirectory("chatbridge-e2e-hostile")
            let dollarMarker = scratch.file("PWNED_dollar")
            let backtickMarker = scratch.file("PWNED_backtick")
            let argvDirectory = scratch.file("argv")
            let shellDirectory = scratch.file("shell")
            for folder in [argvDirectory, shellDirectory] {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            let longName = String(String(repeating: "Ünïcødé <&> 🎉 $(x) `y` ", count: 250).prefix(5000))
            #expect(longName.count == 5000)
            let names = [
                "$(touch \(dollarMarker))",
                "`touch \(backtickMarker)`",
                #"Quotes ' " \" ; rm -rf ~ ; <!channel> @everyone & <b>bold</b> {{chat.id}} {{{chat.account_id}}}"#,
                "Line one\nline two\r\n\ttab \u{07} bell \u{1B}[31mred\u{1B}[0m \u{202E}reversed",
                longName,
            ]

            try await WebhookRecorder.withRunning { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 3, seed: 51)) { simulator in
                    let workspace = try CLIWorkspace(
                        config: CLIWorkspace.sourceYAML(url: simulator.baseURL)
                            + Self.sinksYAML(argvDirectory: argvDirectory, shellDirectory: shellDirectory),
                        rules: ["hostile.yaml": Self.rule],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                    let baseline = try await workspace.run(["run", "--once"])
                    try #require(baseline.exitStatus == 0, "\(baseline)")

                    // Injected through the control API, as a test or a person would.
                    for (index, name) in names.enumerated() {
                        var request = HTTPClientRequest(url: simulator.baseURL + "/_sim/chats")
                        request.method = .POST
                        request.body = .bytes(Array(Self.chat(id: "hostile-\(index)", name: .string(name), day: index + 1).compactString.utf8))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                        #expect(response.status.code == 200, "the simulator took chat \(index)")
                    }

                    let run = try await workspace.run(["run", "--once"], timeout: .seconds(40))
                    #expect(run.exitStatus == 0, "\(run)")
                    #expect(run.stdout.isEmpty, "no sink writes to stdout: \(run.stdout.prefix(300))")
                    #expect(!run.stderr.contains(WebhookRecorder.secretPath), "the webhook URL leaked")
                    // What /bin/echo writes is read by chatbridge, never copied into its log stream.
                    #expect(!run.stderr.contains(names[0]) && !run.stderr.contains(names[1]), "\(run.stderr.prefix(3000))")

                    let fileManager = FileManager.default
                    #expect(!fileManager.fileExists(atPath: dollarMarker), "$(...) ran")
                    #expect(!fileManager.fileExists(atPath: backtickMarker), "`...` ran")

                    let delivered = try await workspace.deliveries(["--status", "delivered"])
                    let unfinished = try await workspace.deliveries().filter { $0["status"] != .string("delivered") }
                    #expect(delivered.count == names.count * 7, "every delivery succeeded: \(unfinished.map(\.compactString))")

                    // Every argv received the literal name.
                    let argvNames = try fileManager.contentsOfDirectory(atPath: argvDirectory).map {
                        String(decoding: try Data(contentsOf: URL(fileURLWithPath: argvDirectory + "/" + $0)), as: UTF8.self)
                    }
                    #expect(argvNames.sorted() == names.sorted(), "argv carried the names as they are")

                    // The string command got the event JSON on its standard input.
                    let shellEvents = try fileManager.contentsOfDirectory(atPath: shellDirectory).map {
                        try JSONValue.parse(try Data(contentsOf: URL(fileURLWithPath: shellDirectory + "/" + $0)))
                    }
                    #expect(shellEvents.compactMap { $0["chat"]?["name"]?.stringValue }.sorted() == names.sorted())
                    #expect(shellEvents.allSatisfy { $0["rule"] == .string("hostile") })

                    // Every webhook body is JSON, for two independent parsers, and says the name.
                    let requests = await recorder.requests
                    #expect(requests.count == names.count * 4)
                    var bodiesBySink: [String: [JSONValue]] = [:]
                    for request in requests {
                        #expect((try? JSONSerialization.jsonObject(with: Data(request.body))) != nil, "Foundation parses the body")
                        let body = try #require(request.json, "the body is JSON")
                        bodiesBySink[request.headers["x-e2e-sink"] ?? "?", default: []].append(body)
                        #expect(request.headers["content-type"]?.hasPrefix("application/json") == true)
                    }
                    let jsonNames = (bodiesBySink["json"] ?? []).compactMap { $0["chat"]?["name"]?.stringValue }
                    #expect(jsonNames.sorted() == names.sorted())
                    let slackTexts = (bodiesBySink["slack"] ?? []).compactMap { $0["text"]?.stringValue }
                    #expect(slackTexts.sorted() == names.map(Self.slackEscaped).sorted(), "Slack text escaped exactly once")
                    #expect(!slackTexts.contains { $0.contains("<!channel>") }, "no Slack mention survives")
                    let discordBodies = bodiesBySink["discord"] ?? []
                    #expect(discordBodies.count == names.count)
                    for body in discordBodies {
                        let content = try #require(body["content"]?.stringValue)
                        #expect(content.utf16.count <= 2000, "cut to Discord's limit")
                        #expect(names.contains(content) || (content.hasSuffix("…") && longName.hasPrefix(String(content.dropLast()))))
                        #expect(body["allowed_mentions"]?["parse"] == .array([]), "@everyone pings nobody")
                    }
                    let teamsTexts = (bodiesBySink["teams"] ?? []).compactMap {
                        $0["attachments"]?.arrayValue?.first?["content"]?["body"]?.arrayValue?.first?["text"]?.stringValue
                    }
                    #expect(teamsTexts.sorted() == names.sorted())
                }
            }
        }

        /// Some APIs emit lone UTF-16 surrogates (a broken emoji cut in half). The simulator's
        /// control API refuses them, so a fixed page is served from a server of this test.
        @Test func loneSurrogatesBecomeReplacementCharactersAndBodiesStayJSON() async throws {
            let page = #"{"object":"ChatList","items":[{"object":"Chat","id":"surrogates","account_id":"acc_1","account_type":"WHATSAPP","provider_id":"p","attendee_provider_id":"a","name":"half \ud83d emoji \udc00 low, \ud83d\ude00 whole","type":0,"timestamp":"2031-01-01T00:00:00.000Z","unread_count":2,"archived":0,"muted_until":null,"read_only":0,"disabledFeatures":[],"subject":null,"organization_id":null,"mailbox_id":null,"content_type":null,"folder":["INBOX"],"pinned":0}],"cursor":null}"#
            let expectedName = "half \u{FFFD} emoji \u{FFFD} low, 😀 whole"
            let scratch = TemporaryDirectory("chatbridge-e2e-surrogates")
            let argvDirectory = scratch.file("argv")
            let shellDirectory = scratch.file("shell")
            for folder in [argvDirectory, shellDirectory] {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            try await WebhookRecorder.withRunning { recorder in
                try await withFixedChatPage(page) { baseURL in
                    let workspace = try CLIWorkspace(
                        config: CLIWorkspace.sourceYAML(url: baseURL) + "baseline: emit\n"
                            + Self.sinksYAML(argvDirectory: argvDirectory, shellDirectory: shellDirectory),
                        rules: ["hostile.yaml": Self.rule],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                    let run = try await workspace.run(["run", "--once"], timeout: .seconds(40))
                    #expect(run.exitStatus == 0, "\(run)")

                    let stored = try await workspace.storedEvents()
                    #expect(stored.count == 1)
                    #expect(stored.first?["chat"]?["name"] == .string(expectedName))
                    let requests = await recorder.requests
                    #expect(requests.count == 4)
                    for request in requests {
                        #expect((try? JSONSerialization.jsonObject(with: Data(request.body))) != nil, "Foundation parses the body")
                        #expect(request.json != nil)
                    }
                    let json = requests.first { $0.headers["x-e2e-sink"] == "json" }?.json
                    #expect(json?["chat"]?["name"] == .string(expectedName))
                    let argv = try FileManager.default.contentsOfDirectory(atPath: argvDirectory).map {
                        String(decoding: try Data(contentsOf: URL(fileURLWithPath: argvDirectory + "/" + $0)), as: UTF8.self)
                    }
                    #expect(argv == [expectedName])
                }
            }
        }

        /// simulator.md: every other field of a posted chat is served back as given, a lone
        /// UTF-16 surrogate escape included.
        @Test func simulatorControlAPIServesLoneSurrogatesAsGiven() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 0)) { simulator in
                var request = HTTPClientRequest(url: simulator.baseURL + "/_sim/chats")
                request.method = .POST
                request.body = .bytes(Array(#"{"id":"s1","name":"half \ud83d emoji","timestamp":"2031-01-01T00:00:00.000Z"}"#.utf8))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                #expect(response.status.code == 200)
                var list = HTTPClientRequest(url: simulator.baseURL + "/api/v1/chats")
                list.headers.add(name: "X-API-KEY", value: apiKey)
                let page = try await HTTPClient.shared.execute(list, timeout: .seconds(5))
                let body = try await page.body.collect(upTo: 1 << 20)
                #expect(String(buffer: body).lowercased().contains(#"\ud83d emoji"#))
            }
        }
    }
}

/// Serves `GET /api/v1/chats` on 127.0.0.1 with the fixed `body` (any key accepted), for
/// content the simulator cannot hold; runs `body` with the base URL.
func withFixedChatPage<T: Sendable>(_ page: String, _ body: (String) async throws -> T) async throws -> T {
    let router = Router()
    router.get("/api/v1/chats") { _, _ -> Response in
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }
    return try await withLocalHTTPServer(router, label: "e2e-fixed-page") { port in
        try await body("http://127.0.0.1:\(port)")
    }
}
