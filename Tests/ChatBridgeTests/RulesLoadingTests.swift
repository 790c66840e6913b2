import CEL
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

@Suite("Rules loading and validation")
struct RulesLoadingTests {
    @Test("a full rule loads with every key")
    func fullRule() throws {
        let folder = RulesTestFolder()
        folder.write("linkedin.yaml", """
            name: linkedin-inmail-unread
            description: A LinkedIn InMail has new unread messages
            on: [unread.increased, chat.added]
            when: >
              chat.account_type == "LINKEDIN" && chat.content_type == "inmail"
              && chat.unread_count > 0
            send: [team-slack, stdout]
            throttle: 15m
            template: "New InMail in {{chat.name}} ({{chat.unread_count}} unread)"
            enabled: true
            quiet_hours: {from: "22:00", to: "07:00", timezone: "Europe/Paris"}
            digest: 10m
            """)
        let rules = try folder.load().get()
        #expect(rules.rules.count == 1)
        let rule = try #require(rules.rules.first)
        #expect(rule.name == "linkedin-inmail-unread")
        #expect(rule.description == "A LinkedIn InMail has new unread messages")
        #expect(rule.on == ["unread.increased", "chat.added"])
        #expect(rule.condition.source.hasPrefix("chat.account_type == \"LINKEDIN\""))
        #expect(rule.sinks == ["team-slack", "stdout"])
        #expect(rule.throttle == .seconds(900))
        #expect(rule.template?.text == "New InMail in {{chat.name}} ({{chat.unread_count}} unread)")
        #expect(rule.isEnabled)
        #expect(rule.quietHours == QuietHours(fromMinute: 22 * 60, toMinute: 7 * 60, timeZone: TimeZone(identifier: "Europe/Paris")!))
        #expect(rule.digest == .seconds(600))
        #expect(rule.file == "rules/linkedin.yaml")
        #expect((rule.line, rule.column) == (1, 1))
    }

    @Test("defaults: name from the file, every event, when true, send stdout, enabled")
    func defaults() throws {
        let folder = RulesTestFolder()
        folder.write("everything.yml", "description: all of it\n")
        let rule = try #require(try folder.load().get().rules.first)
        #expect(rule.name == "everything")
        #expect(rule.on == nil)
        #expect(rule.condition.source == "true")
        #expect(rule.sinks == ["stdout"])
        #expect(rule.throttle == nil && rule.template == nil && rule.quietHours == nil && rule.digest == nil)
        #expect(rule.isEnabled)
    }

    @Test("a bare `on` key is `on`, not the boolean true; a single string is a list of one")
    func bareOnKey() throws {
        let folder = RulesTestFolder()
        folder.write("a.yaml", "on: chat.added\n")
        folder.write("b.yaml", "'on': [chat.removed, unread.cleared]\n")
        let rules = try folder.load().get()
        #expect(rules.rules.map(\.name) == ["a", "b"])
        #expect(rules.rules[0].on == ["chat.added"])
        #expect(rules.rules[1].on == ["chat.removed", "unread.cleared"])
    }

    @Test("files load in name order, `*.yaml` and `*.yml` only; a list under `rules:` keeps its order")
    func fileOrderAndLists() throws {
        let folder = RulesTestFolder()
        folder.write("b.yaml", """
            rules:
              - name: b2
                on: chat.added
              - name: b1
                when: false
            """)
        folder.write("a.yml", "name: a\n")
        folder.write("notes.txt", "this: is not a rule\n")
        folder.write(".hidden.yaml", "not: valid: yaml: [\n")
        let rules = try folder.load().get()
        #expect(rules.rules.map(\.name) == ["a", "b2", "b1"])
    }

    @Test("one file can be the rules path")
    func singleFile() throws {
        let folder = RulesTestFolder()
        let file = folder.write("only.yaml", "name: only\non: chat.removed\n")
        let rules = try RuleSet.load(path: file, configuration: folder.configuration(), currentDirectory: folder.path)
        #expect(rules.rules.map(\.name) == ["only"])
    }

    @Test("the default rules folder may be absent; a folder the user named may not")
    func absentFolder() throws {
        let folder = RulesTestFolder()
        try FileManager.default.removeItem(atPath: folder.rulesPath)
        let implicit = folder.configuration(rulesPathIsExplicit: false)
        #expect(try RuleSet.load(path: implicit.rulesPath, configuration: implicit, currentDirectory: folder.path).isEmpty)
        #expect(folder.problems() == [
            "rules: no rules folder or rule file here (create it, or change `rules:` in the configuration)",
        ])
    }

    @Test("`when: true` and `when: false` are those literals; yes/no too")
    func booleanConditions() throws {
        let folder = RulesTestFolder()
        folder.write("a.yaml", "when: true\n")
        folder.write("b.yaml", "when: false\n")
        folder.write("c.yaml", "when: no\n")
        folder.write("d.yaml", "when: \"true\"\n") // a quoted string is CEL source, which is also true
        let rules = try folder.load().get()
        let event = RuleTestEvents.added(RuleTestEvents.chat())
        let outcomes = rules.evaluate(event, now: RuleTestEvents.occurredAt).map(\.outcome)
        #expect(outcomes == [.matched, .conditionFalse, .conditionFalse, .matched])
        #expect(rules.rules.map(\.condition.source) == ["true", "false", "false", "true"])
    }

    // MARK: - Problems, with their exact positions

    @Test("a YAML syntax error")
    func yamlError() {
        let folder = RulesTestFolder()
        folder.write("broken.yaml", """
            name: broken
              when: true
            """)
        let problems = folder.problems()
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("rules/broken.yaml:2:7: YAML syntax error: mapping values are not allowed") == true)
    }

    @Test("a key repeated in a rule")
    func duplicateKey() {
        let folder = RulesTestFolder()
        folder.write("twice.yaml", "name: twice\nwhen: true\nwhen: false\n")
        #expect(folder.problems() == ["rules/twice.yaml:3:1: duplicate key 'when': it is already set at line 2"])
    }

    @Test("a key written bare and quoted is the same key: `on` is not a boolean here")
    func duplicateKeyBareAndQuoted() {
        let folder = RulesTestFolder()
        folder.write("twice.yaml", "name: twice\non: chat.added\n\"on\": chat.removed\nwhen: true\n")
        #expect(folder.problems() == ["rules/twice.yaml:3:1: duplicate key 'on': it is already set at line 2"])
    }

    @Test("unknown keys, with a guess")
    func unknownKeys() {
        let folder = RulesTestFolder()
        folder.write("keys.yaml", """
            name: keys
            sned: [stdout]
            colour: blue
            quiet_hours: {from: "22:00", to: "07:00", zone: UTC}
            """)
        #expect(folder.problems() == [
            "rules/keys.yaml:2:1: unknown key 'sned' in the rule (did you mean 'send'?)",
            "rules/keys.yaml:3:1: unknown key 'colour' in the rule; known keys: name, description, on, when, send, throttle, template, enabled, quiet_hours, digest",
            "rules/keys.yaml:4:43: unknown key 'zone' in quiet_hours of rule 'keys'; known keys: from, to, timezone",
        ])
    }

    @Test("an unknown kind in `on`")
    func unknownKind() {
        let folder = RulesTestFolder()
        folder.write("kinds.yaml", """
            name: kinds
            on: [unread.increased, unread.increasd, chat.changed]
            """)
        #expect(folder.problems() == [
            "rules/kinds.yaml:2:24: rule 'kinds': unknown event kind or type 'unread.increasd' in `on` (did you mean 'unread.increased'?)",
        ])
    }

    @Test("an unknown sink in `send`")
    func unknownSink() {
        let folder = RulesTestFolder()
        folder.write("sinks.yaml", """
            name: sinks
            send: [stdout, slack, team-slakc]
            """)
        #expect(folder.problems() == [
            "rules/sinks.yaml:2:16: rule 'sinks': unknown sink 'slack' in `send`; configured sinks: audit, notify, stdout, team-slack",
            "rules/sinks.yaml:2:23: rule 'sinks': unknown sink 'team-slakc' in `send` (did you mean 'team-slack'?)",
        ])
    }

    @Test("a CEL syntax error points at its column inside a plain one-line expression")
    func celSyntaxErrorPlain() throws {
        let expression = "chat.unread_count > > 3"
        let celError = try #require(compileError(expression))
        let folder = RulesTestFolder()
        folder.write("syntax.yaml", "name: syntax\nwhen: \(expression)\n")
        let problems = folder.problems()
        #expect(problems == ["rules/syntax.yaml:2:\(6 + celError.column): rule 'syntax': `when`: \(celError.message)"])
        // The parser stops at the second `>` or the token after it, never before.
        #expect(celError.column >= 21)
    }

    @Test("an unknown variable inside a double-quoted expression with escapes")
    func unknownVariableDoubleQuoted() throws {
        let expression = #"chat.name == "x" && nme"#
        let celError = try #require(compileError(expression))
        #expect(celError.column == 21)
        #expect(celError.message.contains("nme"))
        let folder = RulesTestFolder()
        folder.write("quoted.yaml", #"""
            name: quoted
            when: "chat.name == \"x\" && nme"
            """#)
        #expect(folder.problems() == ["rules/quoted.yaml:2:30: rule 'quoted': `when`: \(celError.message)"])
    }

    @Test("an unknown variable inside a single-quoted expression with '' escapes")
    func unknownVariableSingleQuoted() throws {
        let folder = RulesTestFolder()
        folder.write("single.yaml", """
            name: single
            when: 'chat.name == ''it'' || chats.unread_count > 0'
            """)
        let expression = "chat.name == 'it' || chats.unread_count > 0"
        let celError = try #require(compileError(expression))
        #expect(celError.message.contains("chats"))
        // `chats` is at column 22 of the expression; in the file each '' took two columns.
        #expect(celError.column == 22)
        #expect(folder.problems() == ["rules/single.yaml:2:31: rule 'single': `when`: \(celError.message)"])
    }

    @Test("an unknown function in a folded `>` block maps to its own line and column")
    func unknownFunctionFolded() throws {
        let folder = RulesTestFolder()
        folder.write("folded.yaml", """
            name: folded
            on: unread.increased
            when: >
              chat.account_type == "LINKEDIN"
              && frobnicate(chat.name) > 0
            """)
        let expression = "chat.account_type == \"LINKEDIN\" && frobnicate(chat.name) > 0\n"
        let celError = try #require(compileError(expression))
        #expect(celError.message.contains("frobnicate"))
        // Where CEL reports it, on line 5 of the file: the expression's column 32 is the
        // folded line break, so the second line starts at column 33 = file column 3.
        #expect(celError.column > 33)
        let fileColumn = 3 + (celError.column - 33)
        #expect(folder.problems() == ["rules/folded.yaml:5:\(fileColumn): rule 'folded': `when`: \(celError.message)"])
    }

    @Test("an error in a literal `|` block maps line by line")
    func literalBlock() throws {
        let folder = RulesTestFolder()
        folder.write("literal.yaml", """
            name: literal
            when: |
              chat.unread_count > 0 &&
                size(chat.name) > 0 && nme
            send: stdout
            """)
        let expression = "chat.unread_count > 0 &&\n  size(chat.name) > 0 && nme\n"
        let celError = try #require(compileError(expression))
        #expect((celError.line, celError.column) == (2, 26))
        #expect(folder.problems() == ["rules/literal.yaml:4:28: rule 'literal': `when`: \(celError.message)"])
    }

    @Test("a rule name used twice, across files and within one")
    func duplicateNames() {
        let folder = RulesTestFolder()
        folder.write("a.yaml", "name: dup\n")
        folder.write("b.yaml", "rules:\n  - name: other\n  - name: dup\n  - name: other\n")
        folder.write("dup.yaml", "on: chat.added\n")
        #expect(folder.problems() == [
            "rules/b.yaml:3:11: rule name 'dup' is already used at rules/a.yaml:1: rule names must be unique",
            "rules/b.yaml:4:11: rule name 'other' is already used at line 2: rule names must be unique",
            "rules/dup.yaml:1:1: rule name 'dup' is already used at rules/a.yaml:1: rule names must be unique",
        ])
    }

    @Test("a duplicate name is reported beside the other problems of the rules that have it")
    func duplicateNamesOfBrokenRules() {
        let folder = RulesTestFolder()
        folder.write("a.yaml", "name: dup\nsend: [nowhere]\n")
        folder.write("b.yaml", "name: dup\n")
        #expect(folder.problems() == [
            "rules/a.yaml:2:8: rule 'dup': unknown sink 'nowhere' in `send`; configured sinks: audit, notify, stdout, team-slack",
            "rules/b.yaml:1:7: rule name 'dup' is already used at rules/a.yaml:1: rule names must be unique",
        ])
    }

    @Test("bad quiet_hours: times, time zone, an empty window, a missing end")
    func badQuietHours() {
        let folder = RulesTestFolder()
        folder.write("quiet.yaml", """
            rules:
              - name: a
                quiet_hours: {from: "25:00", to: "07:00", timezone: "Mars/Olympus"}
              - name: b
                quiet_hours: {from: "7:00", to: "07:00"}
              - name: c
                quiet_hours:
                  from: 22h
              - name: d
                quiet_hours: {from: "22:00", to: "06:30", timezone: europe/paris}
            """)
        #expect(folder.problems() == [
            "rules/quiet.yaml:3:25: rule 'a': quiet_hours.from must be a time of day HH:MM from 00:00 to 23:59, not '25:00'",
            "rules/quiet.yaml:3:57: rule 'a': quiet_hours.timezone 'Mars/Olympus' is not a time zone of the tz database (e.g. Europe/Paris, America/New_York, UTC)",
            "rules/quiet.yaml:5:37: rule 'b': quiet_hours.from and quiet_hours.to are the same time: the window would be empty",
            "rules/quiet.yaml:8:7: rule 'c': quiet_hours.to is required, e.g. to: \"07:00\"",
            "rules/quiet.yaml:8:13: rule 'c': quiet_hours.from must be a time of day HH:MM from 00:00 to 23:59, not '22h'",
            "rules/quiet.yaml:10:57: rule 'd': quiet_hours.timezone 'europe/paris' is not a time zone of the tz database (e.g. Europe/Paris, America/New_York, UTC)",
        ])
    }

    @Test("bad durations, booleans, templates and names")
    func otherProblems() throws {
        var templateColumn = 0
        do throws(TemplateError) { try DeliveryTemplate.validate("{{#chat}}{{name}}") } catch {
            templateColumn = 15 + min(error.column ?? 1, 18) // the value starts at 16, after the quote at 15
        }
        #expect(templateColumn > 15)
        let folder = RulesTestFolder()
        folder.write("other.yaml", """
            rules:
              - name: a
                throttle: 15
                digest: 0s
                enabled: maybe
              - name: bad name!
              - name: c
                template: "{{#chat}}{{name}}"
                on: []
                send: []
            """)
        #expect(folder.problems() == [
            "rules/other.yaml:3:15: rule 'a': `throttle`: '15' has no unit: write 15s, not 15 (units: ms, s, m, h, d)",
            "rules/other.yaml:4:13: rule 'a': `digest` must be longer than 0s",
            "rules/other.yaml:5:14: rule 'a': `enabled` must be true or false, not 'maybe'",
            "rules/other.yaml:6:11: rule name 'bad name!' may only hold letters, digits, _, . and - (at most 100)",
            "rules/other.yaml:8:\(templateColumn): rule 'c': `template`: a section is opened but never closed",
            "rules/other.yaml:9:9: rule 'c': `on` is empty; leave it out to consider every event",
            "rules/other.yaml:10:11: rule 'c': `send` is empty; name at least one sink (or set `enabled: false`)",
        ])
    }

    @Test("every problem of every file is reported, and good files still load")
    func everyProblem() {
        let folder = RulesTestFolder()
        folder.write("1-good.yaml", "name: good\n")
        folder.write("2-bad.yaml", "name: bad\non: nope\nwhen: chat.x >\nsend: nowhere\n")
        folder.write("3-empty.yaml", "# nothing but a comment\n")
        folder.write("4-list.yaml", "rules: {name: x}\nextra: 1\n")
        let problems = folder.problems()
        #expect(problems.count == 6)
        #expect(problems.filter { $0.hasPrefix("rules/2-bad.yaml:") }.count == 3)
        #expect(problems.contains("rules/3-empty.yaml:1:1: the file holds no rule: write one rule (name, on, when, send) or a list of them under `rules:`"))
        #expect(problems.contains("rules/4-list.yaml:1:8: rules must be a list, not a map"))
        #expect(problems.contains("rules/4-list.yaml:2:1: unknown key 'extra' next to `rules:`: a file holds one rule, or a list of rules under `rules:`"))

        let (ruleSet, diagnostics) = RuleSet.loadCollectingProblems(
            path: folder.rulesPath, sinkNames: ["stdout"], mayBeAbsent: false, currentDirectory: folder.path)
        #expect(ruleSet.rules.map(\.name) == ["good"])
        #expect(diagnostics.count == 6)
    }

    @Test("RuleSet.parse reads one text, naming its rule after the file")
    func parseText() throws {
        let rules = try RuleSet.parse(yaml: "on: chat.added\nsend: [audit]\n", file: "config/extra.yaml", sinkNames: ["audit"])
        #expect(rules.rules.map(\.name) == ["extra"])
        #expect(rules.rules.first?.sinks == ["audit"])
        #expect(throws: ConfigurationError.self) { try RuleSet.parse(yaml: "send: [audit]\n", file: "x.yaml") }
    }

    /// The compile error CEL itself gives `expression`, for tests that check how its
    /// position is mapped into the file.
    private func compileError(_ expression: String) -> CELCompileError? {
        do {
            _ = try CELProgram.compile(expression, declarations: RuleVariables.declarations)
            return nil
        } catch {
            return error
        }
    }
}
/// A temp folder with a `rules/` folder in it, for rule files written by a test.
/// Removed when dropped.
final class RulesTestFolder: @unchecked Sendable {
    let path: String
    var rulesPath: String { path + "/rules" }

    init() {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("chatbridge-rules-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(atPath: path + "/rules", withIntermediateDirectories: true)
    }

    /// Writes `text` to `rules/NAME` (or to `NAME` relative to the folder when it holds a `/`).
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let file = name.contains("/") ? path + "/" + name : rulesPath + "/" + name
        let folder = (file as NSString).deletingLastPathComponent
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// A configuration whose rules are in `rules/`, with a Slack webhook sink, a JSON
    /// webhook sink and an exec sink besides `stdout`.
    func configuration(rulesPathIsExplicit: Bool = true) -> ChatBridgeConfiguration {
        ChatBridgeConfiguration(
            file: path + "/config/chatbridge.yaml",
            baseDirectory: path,
            sources: [],
            storePath: path + "/state/chatbridge.sqlite",
            rulesPath: rulesPath,
            rulesPathIsExplicit: rulesPathIsExplicit,
            sinks: [
                "team-slack": SinkConfiguration(name: "team-slack", kind: .webhook(WebhookSinkConfiguration(
                    url: Secret("https://hooks.example.invalid/T000/B000/secret-token"), format: .slack,
                    template: "{{chat.name}} for the team"))),
                "audit": SinkConfiguration(name: "audit", kind: .webhook(WebhookSinkConfiguration(
                    url: Secret("https://audit.example.invalid/hook?key=hunter2")))),
                "notify": SinkConfiguration(name: "notify", kind: .exec(ExecSinkConfiguration(
                    command: .arguments(["/usr/bin/notify", "--title", "{{chat.name}}", "{{text}}"])))),
            ]
        )
    }

    /// Loads `rules/` and returns the rules, or the diagnostics as text lines.
    func load() -> Result<RuleSet, ConfigurationError> {
        Result { () throws(ConfigurationError) -> RuleSet in
            try RuleSet.load(path: rulesPath, configuration: configuration(), currentDirectory: path)
        }
    }

    /// The diagnostics of loading `rules/`, as `FILE:LINE:COLUMN: message` lines
    /// (empty when it loads).
    func problems() -> [String] {
        switch load() {
        case .success: return []
        case .failure(let error): return error.diagnostics.map(\.description)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Events as the detector makes them, for matching tests.
enum RuleTestEvents {
    static let occurredAt = Date(timeIntervalSince1970: 1_790_000_000) // 2026-09-21T14:13:20Z, a Monday

    static func chat(
        id: String = "chat_1",
        accountType: String = "LINKEDIN",
        name: JSONValue = .string("Jane Doe"),
        unread: Int64 = 3,
        contentType: JSONValue = .null,
        mutedUntil: JSONValue = .null
    ) -> JSONValue {
        .object([
            "object": .string("Chat"),
            "id": .string(id),
            "account_id": .string("acc_1"),
            "account_type": .string(accountType),
            "name": name,
            "unread_count": .int(unread),
            "archived": .int(0),
            "muted_until": mutedUntil,
            "content_type": contentType,
        ])
    }

    /// `unread.increased` from 0 to the chat's unread count.
    static func unreadIncreased(
        _ chat: JSONValue, id: String = "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77", occurredAt: Date = occurredAt
    ) -> Event {
        var previous = chat.objectValue ?? JSONObject()
        previous["unread_count"] = .int(0)
        return Event(
            id: id, type: .chatChanged, kinds: [.unreadIncreased], occurredAt: occurredAt, source: "main",
            accountID: chat["account_id"]?.stringValue, accountType: chat["account_type"]?.stringValue,
            chatID: chat["id"]?.stringValue, chat: chat, previous: .object(previous),
            changes: [FieldChange(field: "unread_count", from: .int(0), to: chat["unread_count"] ?? .null)])
    }

    static func added(_ chat: JSONValue, id: String = "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a78") -> Event {
        Event(
            id: id, type: .chatAdded, kinds: [.chatAdded], occurredAt: occurredAt, source: "main",
            accountID: chat["account_id"]?.stringValue, accountType: chat["account_type"]?.stringValue,
            chatID: chat["id"]?.stringValue, chat: chat, previous: nil, changes: [])
    }
}
