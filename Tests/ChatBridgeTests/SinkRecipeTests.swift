import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Formats

// Every recipe of docs/sinks.md, read from the file itself, sent a sample event, a
// hostile one and one with a 5,000-character name, to a local receiver standing in for
// the service: the request must be what the service documents, the body valid, the
// hostile text arriving as text, nothing executed.

/// The recipes of docs/sinks.md: each ```yaml block whose first line is `# recipe: NAME`.
enum SinkRecipes {
    static let documentPath: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("docs/sinks.md").path
    }()

    static func load() throws -> [String: String] {
        let text = try String(contentsOfFile: documentPath, encoding: .utf8)
        var recipes: [String: String] = [:]
        var current: (name: String, lines: [String])?
        var inBlock = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if !inBlock, line == "```yaml" { inBlock = true; continue }
            if inBlock, line == "```" {
                if let current { recipes[current.name] = current.lines.joined(separator: "\n") + "\n" }
                current = nil
                inBlock = false
                continue
            }
            guard inBlock else { continue }
            if current == nil, line.hasPrefix("# recipe: ") {
                current = (String(line.dropFirst("# recipe: ".count)), [])
            } else if current != nil {
                current?.lines.append(line)
            }
        }
        return recipes
    }

    /// The recipe pointed at `origin`: the scheme and host of a written-out URL replaced.
    static func pointed(_ yaml: String, at origin: String) -> String {
        yaml.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let range = line.range(of: "url: http") else { return String(line) }
            let start = range.upperBound
            let afterScheme = line[start...].drop { $0 != "/" }.dropFirst(2)
            let rest = afterScheme.drop { $0 != "/" }
            return String(line[..<line.index(range.lowerBound, offsetBy: 5)]) + origin + rest
        }.joined(separator: "\n")
    }
}

/// What the test sends through each recipe.
private let recipeEvents: [JSONValue] = {
    var long = SampleEvent.hostile
    if case .object(var object) = long, case .object(var chat)? = object["chat"] {
        var name = ""
        while name.count < 5000 { name += SampleEvent.hostileName }
        chat["name"] = .string(String(name.prefix(5000)))
        object["chat"] = .object(chat)
        object["id"] = "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a7a"
        long = .object(object)
    }
    return [SampleEvent.changed, SampleEvent.hostile, long].map { event in
        guard case .object(var object) = event else { return event }
        object["rule"] = nil
        return .object(object)
    }
}()

private struct RecipeCheck {
    var environment: [String: String]
    /// Checks one request for `event` (as delivered, with `rule`).
    var check: @Sendable (_ request: ReceivedRequest, _ event: JSONValue) throws -> Void
}

private func name(_ event: JSONValue) -> String? { event["chat"]?["name"]?.stringValue }
private func summary(_ event: JSONValue) -> String { DeliverySummary.text(for: event) }

private let httpRecipeChecks: [String: RecipeCheck] = [
    "ntfy": RecipeCheck(environment: ["NTFY_TOPIC": "sales-desk"]) { request, event in
        #expect(request.method == "POST" && request.path == "/")
        #expect(request.headers["content-type"] == "application/json")
        let body = try #require(request.json)
        #expect(body["topic"] == "sales-desk")
        #expect(body["title"]?.stringValue == name(event))
        #expect(body["message"]?.stringValue == summary(event))
        #expect(body["tags"] == ["speech_balloon"])
    },
    "telegram": RecipeCheck(environment: ["TELEGRAM_BOT_TOKEN": "123456:ABC-DEF_ghi", "TELEGRAM_CHAT_ID": "-1001234567890"]) { request, event in
        #expect(request.method == "POST" && request.path == "/bot123456:ABC-DEF_ghi/sendMessage")
        #expect(request.headers["content-type"] == "application/json")
        let body = try #require(request.json)
        #expect(body["chat_id"] == "-1001234567890")
        #expect(body["text"]?.stringValue == summary(event))
        #expect(body["parse_mode"] == nil)
        #expect(body["disable_web_page_preview"] == .bool(true))
    },
    "pagerduty": RecipeCheck(environment: ["PAGERDUTY_ROUTING_KEY": "R0123456789ABCDEF0123456789ABCDE"]) { request, event in
        #expect(request.method == "POST" && request.path == "/v2/enqueue")
        let body = try #require(request.json)
        #expect(body["routing_key"] == "R0123456789ABCDEF0123456789ABCDE")
        #expect(body["event_action"] == "trigger")
        #expect(body["dedup_key"] == event["id"])
        #expect(body["payload"]?["summary"]?.stringValue == summary(event))
        #expect(body["payload"]?["source"] == "chatbridge/main")
        #expect(body["payload"]?["severity"] == "info")
        #expect(body["payload"]?["custom_details"]?["chat"] == event["chat"])
        #expect(body["payload"]?["custom_details"]?["rule"] == event["rule"])
    },
    "pushover": RecipeCheck(environment: ["PUSHOVER_TOKEN": "azGDORePK8gMaC0QOYAMyEEuzJnyUi", "PUSHOVER_USER": "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"]) { request, event in
        #expect(request.method == "POST" && request.path == "/1/messages.json")
        let body = try #require(request.json)
        #expect(body["token"] == "azGDORePK8gMaC0QOYAMyEEuzJnyUi")
        #expect(body["user"] == "uQiRzpo4DXghDmr9QzzfQu27cmVRsG")
        #expect(body["title"]?.stringValue == name(event))
        #expect(body["message"]?.stringValue == summary(event))
    },
    "google-chat": RecipeCheck(environment: ["GOOGLE_CHAT_WEBHOOK_URL": "ORIGIN/v1/spaces/AAAA1234/messages?key=k-123&token=t-456"]) { request, event in
        #expect(request.method == "POST" && request.path == "/v1/spaces/AAAA1234/messages?key=k-123&token=t-456")
        #expect(request.headers["content-type"] == "application/json; charset=UTF-8")
        let body = try #require(request.json)
        #expect(body["text"]?.stringValue == summary(event))
    },
    "mattermost": RecipeCheck(environment: ["MATTERMOST_WEBHOOK_URL": "ORIGIN/hooks/xjs8a7dm3p"]) { request, event in
        #expect(request.method == "POST" && request.path == "/hooks/xjs8a7dm3p")
        let body = try #require(request.json)
        let text = try #require(body["text"]?.stringValue)
        #expect(text == DeliveryFormat.slackEscaped(summary(event)))
        #expect(!text.contains("<!channel>"))
    },
    "matrix": RecipeCheck(environment: ["MATRIX_ROOM_ID": "!ehXvUhWNASUkSLvAGP:example.org", "MATRIX_ACCESS_TOKEN": "syt_Ym90_token"]) { request, event in
        #expect(request.method == "PUT")
        let id = try #require(event["id"]?.stringValue)
        #expect(request.path.hasPrefix("/_matrix/client/v3/rooms/"))
        #expect(request.path.removingPercentEncoding?.contains("!ehXvUhWNASUkSLvAGP:example.org") == true)
        #expect(request.path.hasSuffix("/send/m.room.message/\(id)-vip"))
        #expect(request.headers["authorization"] == "Bearer syt_Ym90_token")
        let body = try #require(request.json)
        #expect(body["msgtype"] == "m.text")
        #expect(body["body"]?.stringValue == summary(event))
        #expect(body["m.mentions"] == .object([:]))
    },
    "home-assistant": RecipeCheck(environment: ["HA_WEBHOOK_ID": "chatbridge-unread-4f1a"]) { request, event in
        #expect(request.method == "POST" && request.path == "/api/webhook/chatbridge-unread-4f1a")
        let body = try #require(request.json)
        #expect(body["id"] == event["id"])
        #expect(body["type"] == event["type"])
        #expect(body["chat"]?.stringValue == name(event))
        #expect(body["unread"] == event["chat"]?["unread_count"])
        #expect(body["summary"]?.stringValue == summary(event))
    },
]

@Suite("docs/sinks.md: every recipe against a local receiver", .timeLimit(.minutes(2)))
struct SinkRecipeTests {
    /// The command line ignores SIGPIPE; so must a test whose command leaves its standard
    /// input unread (as apprise does when given --body).
    init() { signal(SIGPIPE, SIG_IGN) }

    @Test("the document holds exactly the recipes tested")
    func everyRecipeIsTested() throws {
        let recipes = try SinkRecipes.load()
        #expect(Set(recipes.keys) == Set(httpRecipeChecks.keys).union(["apprise"]))
    }

    @Test("HTTP recipes: the request each service documents, valid for hostile names", arguments: httpRecipeChecks.keys.sorted())
    func httpRecipe(_ recipe: String) async throws {
        let yaml = try #require(try SinkRecipes.load()[recipe])
        let check = try #require(httpRecipeChecks[recipe])
        try await withAnyMethodReceiver({ _, _ in receiverResponse(200, #"{"ok":true}"#) }) { origin, http, log in
            let environment = check.environment.mapValues { $0.replacingOccurrences(of: "ORIGIN", with: origin) }
            let text = "sources:\n  - name: main\n    url: http://127.0.0.1:9/\n    api_key: k_test\n"
                + SinkRecipes.pointed(yaml, at: origin)
            let configuration = try ChatBridgeConfiguration.parse(yaml: text, file: "/tmp/recipe/config/chatbridge.yaml", environment: environment)
            #expect(configuration.templateProblems().isEmpty, "\(configuration.templateProblems())")
            let (sinkName, sinkConfiguration) = try #require(configuration.sinks.first { $0.key != "stdout" })
            let sink = makeSink(name: sinkName, configuration: sinkConfiguration, httpClient: http, environment: [:])
            for event in recipeEvents {
                let request = DeliveryRequest(
                    deliveryID: 1, eventID: event["id"]?.stringValue ?? "", event: event, rule: "vip", sink: sinkName)
                let outcome = await sink.deliver(request)
                #expect(outcome == .delivered(status: 200), "\(recipe): \(outcome)")
            }
            let requests = await log.requests
            try #require(requests.count == recipeEvents.count)
            for (request, event) in zip(requests, recipeEvents) {
                var delivered = event
                if case .object(var object) = delivered { object["rule"] = "vip"; delivered = .object(object) }
                try check.check(request, delivered)
            }
        }
    }

    @Test("Apprise: one argument each, --title=NAME kept whole, the URLs passed by environment, no shell")
    func apprise() async throws {
        let yaml = try #require(try SinkRecipes.load()["apprise"])
        let directory = TemporaryDirectory("apprise-recipe")
        let program = directory.file("apprise")
        let output = directory.file("argv")
        // A stand-in for apprise: writes each argument, NUL-terminated, to $APPRISE_URLS.
        try Data("#!/bin/sh\nprintf '%s\\0' \"$@\" > \"$APPRISE_URLS\"\n".utf8).write(to: URL(fileURLWithPath: program))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: program)
        let text = "sources:\n  - name: main\n    url: http://127.0.0.1:9/\n    api_key: k_test\n"
            + yaml.replacingOccurrences(of: "[apprise,", with: "[\(program),")
        let configuration = try ChatBridgeConfiguration.parse(yaml: text, file: "/tmp/recipe/config/chatbridge.yaml", environment: [:])
        let sinkConfiguration = try #require(configuration.sinks["apprise"])
        try await withTestHTTPClient(.init()) { http in
            let sink = makeSink(
                name: "apprise", configuration: sinkConfiguration, httpClient: http,
                environment: ["PATH": "/usr/bin:/bin", "APPRISE_URLS": output, "SECRET_NOT_PASSED": "x"])
            for event in recipeEvents {
                let request = DeliveryRequest(eventID: event["id"]?.stringValue ?? "", event: event, rule: "vip", sink: "apprise")
                #expect(await sink.deliver(request) == .delivered(status: 0))
                let written = try Data(contentsOf: URL(fileURLWithPath: output))
                let argv = written.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
                var delivered = event
                if case .object(var object) = delivered { object["rule"] = "vip"; delivered = .object(object) }
                #expect(argv == ["--title=\(name(delivered) ?? "")", "--body=\(summary(delivered))"])
            }
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pwned"))
    }
}
