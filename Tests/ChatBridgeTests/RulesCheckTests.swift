import Foundation
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

@Suite("Rules check and rules test")
struct RulesCheckTests {
    static let configuration = """
        sources:
          - name: main
            url: http://127.0.0.1:9
            api_key: ${UNIPILE_API_KEY}
        sinks:
          team-slack:
            type: webhook
            url: ${SLACK_WEBHOOK_URL}
            format: slack
        """
    static let environment = ["UNIPILE_API_KEY": "key-123", "SLACK_WEBHOOK_URL": "https://hooks.example.invalid/T0/B0/secret-token"]

    // MARK: - rules check

    @Test("a good configuration with good rules has no problems")
    func allGood() {
        let folder = RulesTestFolder()
        folder.write("config/chatbridge.yaml", Self.configuration)
        folder.write("slack.yaml", "on: unread.increased\nsend: [team-slack]\n")
        let problems = RuleSet.checkAll(configPath: "config/chatbridge.yaml", environment: Self.environment, currentDirectory: folder.path)
        #expect(problems.isEmpty)
    }

    @Test("rule problems are checked against the configured sinks")
    func ruleProblems() {
        let folder = RulesTestFolder()
        folder.write("config/chatbridge.yaml", Self.configuration)
        folder.write("a.yaml", "send: [team-slack, teams]\n")
        folder.write("b.yaml", "when: chat.\n")
        let problems = RuleSet.checkAll(configPath: "config/chatbridge.yaml", environment: Self.environment, currentDirectory: folder.path)
            .map(\.description)
        #expect(problems.count == 2)
        #expect(problems.first == "rules/a.yaml:1:20: rule 'a': unknown sink 'teams' in `send`; configured sinks: stdout, team-slack")
        #expect(problems.last?.hasPrefix("rules/b.yaml:1:") == true)
    }

    @Test("configuration problems and rule problems come together")
    func bothKinds() {
        let folder = RulesTestFolder()
        folder.write("config/chatbridge.yaml", Self.configuration + "\nbaseline: loud\n")
        folder.write("a.yaml", "send: [team-slack]\nwhen: nme\n")
        let problems = RuleSet.checkAll(configPath: "config/chatbridge.yaml", environment: Self.environment, currentDirectory: folder.path)
            .map(\.description)
        #expect(problems.count == 2)
        #expect(problems.first?.hasPrefix("config/chatbridge.yaml:10:11: baseline must be one of silent, emit") == true)
        // The sinks are unknown when the configuration is broken: `send` is not judged.
        #expect(problems.last?.hasPrefix("rules/a.yaml:2:7: rule 'a': `when`: ") == true)
        #expect(problems.last?.contains("nme") == true)
        // No secret of the environment shows up.
        #expect(!problems.joined().contains("secret-token") && !problems.joined().contains("key-123"))
    }

    @Test("a configuration that cannot be read is all that is reported")
    func missingConfiguration() {
        let folder = RulesTestFolder()
        folder.write("a.yaml", "when: nme\n")
        let problems = RuleSet.checkAll(configPath: "config/chatbridge.yaml", environment: [:], currentDirectory: folder.path)
        #expect(problems.count == 1)
        #expect(problems.first?.line == 0)
        #expect(problems.first?.file == "config/chatbridge.yaml")
    }

    // MARK: - rules test

    @Test("a hand-written partial event is completed")
    func completesPartialEvents() throws {
        let now = RuleTestEvents.occurredAt
        let json = try JSONValue.parse(#"""
            {"type": "chat.changed", "kinds": ["unread.increased"], "source": "main",
             "chat": {"id": "c9", "account_id": "acc_9", "account_type": "WHATSAPP", "name": "Bob", "unread_count": 4}}
            """#)
        let event = try RuleSet.completeTestEvent(json, now: now, newEventID: { "generated-id" })
        #expect(event.id == "generated-id")
        #expect(event.occurredAt == now)
        #expect(event.chatID == "c9" && event.accountID == "acc_9" && event.accountType == "WHATSAPP")
        #expect(event.kinds == [.unreadIncreased])

        let added = try RuleSet.completeTestEvent(try JSONValue.parse(#"{"type":"chat.added","chat":{"id":"c1"}}"#), now: now, newEventID: { "x" })
        #expect(added.kinds == [.chatAdded])

        #expect(throws: EventDecodingError.self) {
            try RuleSet.completeTestEvent(try JSONValue.parse(#"{"kinds":[]}"#), now: now, newEventID: { "x" })
        }
        #expect(throws: EventDecodingError.self) {
            try RuleSet.completeTestEvent(try JSONValue.parse(#"{"type":"chat.added","occurred_at":"yesterday"}"#), now: now, newEventID: { "x" })
        }
    }

    @Test("a stored event line, with or without rule, keeps its id and time")
    func storedEventLine() throws {
        let stored = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(contentType: .string("inmail")))
        for json in [stored.json(), stored.json(rule: "some-rule")] {
            let text = json.compactString
            let event = try RuleSet.completeTestEvent(try JSONValue.parse(text), now: Date(), newEventID: { "unused" })
            #expect(event == stored)
        }
    }

    @Test("the report says for each rule whether and why it matches, and what each sink would get")
    func report() throws {
        let folder = RulesTestFolder()
        folder.write("1-inmail.yaml", """
            on: [unread.increased]
            when: chat.account_type == "LINKEDIN"
            send: [team-slack, stdout, notify, audit]
            throttle: 15m
            template: "InMail: {{chat.name}} ({{chat.unread_count}})"
            """)
        folder.write("2-whatsapp.yaml", "when: chat.account_type == \"WHATSAPP\"\n")
        folder.write("3-off.yaml", "enabled: false\n")
        folder.write("4-archived.yaml", "on: chat.archived\n")
        folder.write("5-broken.yaml", "when: chat.nope\n")
        folder.write("6-plain.yaml", "send: [team-slack]\n")
        let configuration = folder.configuration()
        let ruleSet = try folder.load().get()
        let event = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(name: .string("Jane <3 & co")))
        let results = ruleSet.testReport(for: event, configuration: configuration, now: RuleTestEvents.occurredAt)
        #expect(results.map(\.rule) == ["1-inmail", "2-whatsapp", "3-off", "4-archived", "5-broken", "6-plain"])
        #expect(results.map(\.isMatch) == [true, false, false, false, false, true])
        let lines = results.map(\.json)

        let first = lines[0]
        #expect(first["reason"] == .string("matched"))
        #expect(first["throttle"] == .string("15m"))
        let sends = try #require(first["sends"]?.arrayValue)
        #expect(sends.map { $0["sink"]?.stringValue } == ["team-slack", "stdout", "notify", "audit"])
        // Slack: the rule's template (not the sink's), escaped for Slack.
        #expect(sends[0] == .object([
            "sink": .string("team-slack"), "type": .string("webhook"), "format": .string("slack"),
            "body": .object(["text": .string("InMail: Jane &lt;3 &amp; co (3)")]),
        ]))
        // stdout: the event with its rule.
        #expect(sends[1] == .object(["sink": .string("stdout"), "type": .string("stdout"), "line": event.json(rule: "1-inmail")]))
        // exec: the argument templates rendered, `{{text}}` being the rule's template; the event on stdin.
        #expect(sends[2]["argv"]?.arrayValue?.compactMap(\.stringValue) == ["/usr/bin/notify", "--title", "Jane <3 & co", "InMail: Jane <3 & co (3)"])
        #expect(sends[2]["stdin"] == event.json(rule: "1-inmail"))
        // A JSON webhook gets the event with its rule.
        #expect(sends[3]["body"] == event.json(rule: "1-inmail"))

        #expect(lines[1]["reason"] == .string("condition is false"))
        #expect(lines[1]["sends"] == nil)
        #expect(lines[2]["reason"] == .string("disabled (enabled: false)"))
        #expect(lines[3]["reason"]?.stringValue?.hasPrefix("not selected") == true)
        #expect(lines[4]["reason"]?.stringValue?.hasPrefix("condition error") == true)
        #expect(lines[4]["error"]?.stringValue?.contains("nope") == true)
        // Without a rule template, the sink's own template.
        #expect(lines[5]["sends"]?.arrayValue?.first?["body"] == .object(["text": .string("Jane &lt;3 &amp; co for the team")]))

        // Webhook URLs and other secrets never appear.
        let output = lines.map(\.compactString).joined(separator: "\n")
        #expect(!output.contains("secret-token") && !output.contains("hunter2") && !output.contains("example.invalid"))
    }

    @Test("with no rules the report is one stdout line with no rule")
    func reportWithoutRules() throws {
        let folder = RulesTestFolder()
        let event = RuleTestEvents.added(RuleTestEvents.chat())
        let results = RuleSet().testReport(for: event, configuration: folder.configuration(), now: Date())
        #expect(results.count == 1)
        #expect(results[0].json == .object([
            "rule": .null, "matched": .bool(true), "reason": .string("no rules are configured: every event goes to stdout"),
            "sends": .array([.object(["sink": .string("stdout"), "type": .string("stdout"), "line": event.json()])]),
        ]))
    }
}
