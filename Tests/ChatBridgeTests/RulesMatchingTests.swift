import Foundation
import Logging
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

@Suite("Rules matching")
struct RulesMatchingTests {
    static let inmailRule = """
        name: linkedin-inmail-unread
        on: [unread.increased, chat.added]
        when: >
          chat.account_type == "LINKEDIN" && chat.content_type == "inmail"
          && chat.unread_count > 0
        send: [team-slack, stdout]
        throttle: 15m
        """

    private func rules(_ files: [String: String]) throws -> RuleSet {
        let folder = RulesTestFolder()
        for (name, text) in files { folder.write(name, text) }
        return try folder.load().get()
    }

    @Test("a LinkedIn InMail whose unread count rose matches; a WhatsApp chat does not")
    func inmailMatches() throws {
        let ruleSet = try rules(["inmail.yaml": Self.inmailRule])
        let inmail = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(contentType: .string("inmail")))
        let whatsapp = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(accountType: "WHATSAPP"))
        let plainLinkedIn = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(contentType: .null))
        let now = RuleTestEvents.occurredAt
        #expect(ruleSet.evaluate(inmail, now: now) == [RuleEvaluation(rule: "linkedin-inmail-unread", outcome: .matched)])
        #expect(ruleSet.evaluate(whatsapp, now: now).map(\.outcome) == [.conditionFalse])
        #expect(ruleSet.evaluate(plainLinkedIn, now: now).map(\.outcome) == [.conditionFalse])

        // An event of another kind is not selected by `on`, whatever the chat.
        var archived = inmail
        archived.kinds = [.chatArchived]
        #expect(ruleSet.evaluate(archived, now: now).map(\.outcome) == [.notSelected])

        let routes = ruleSet.routes(for: inmail, now: now).routes
        #expect(routes == [OutboxRoute(rule: "linkedin-inmail-unread", sinks: ["team-slack", "stdout"], throttle: .seconds(900))])
        #expect(ruleSet.routes(for: whatsapp, now: now).routes.isEmpty)
    }

    @Test("the variables built for the conditions that read them are those of the whole set")
    func variablesBuiltOnlyWhenRead() throws {
        let now = RuleTestEvents.occurredAt
        let chat = RuleTestEvents.chat(mutedUntil: .int(-1))
        var removed = RuleTestEvents.added(chat)
        removed.type = .chatRemoved
        removed.kinds = [.chatRemoved]
        removed.previous = chat
        let account = Event(
            id: "e", type: .accountError, kinds: [], occurredAt: now, source: "main",
            error: .object(["status": .int(401)]))
        for event in [RuleTestEvents.unreadIncreased(chat), RuleTestEvents.added(chat), removed, account] {
            let all = RuleVariables.activation(for: event, now: now).variables
            #expect(Set(all.keys) == RuleVariables.names)
            for name in RuleVariables.names {
                let some = RuleVariables.activation(for: event, now: now, reading: [name]).variables
                #expect(some[name] == all[name], "\(name) of \(event.type)")
            }
            // Only what is read (and the cheap scalars) is made.
            let scalars = RuleVariables.activation(for: event, now: now, reading: []).variables
            #expect(Set(scalars.keys) == ["kinds", "type", "source", "now", "muted"])
        }
        // The rule set reads what its conditions name.
        let ruleSet = try rules([
            "a.yaml": "when: chat.unread_count > 0\n", "b.yaml": "when: has(changes.name)\n", "c.yaml": "on: chat.added\n",
        ])
        #expect(ruleSet.rules.map(\.condition.variables) == [["chat"], ["changes"], []])
        #expect(ruleSet.evaluate(RuleTestEvents.unreadIncreased(chat), now: now).map(\.outcome)
            == [.matched, .conditionFalse, .notSelected])
    }

    @Test("`on` selects by event type as well as by kind")
    func onByType() throws {
        let ruleSet = try rules(["t.yaml": "on: chat.changed\n", "k.yaml": "on: [unread.cleared]\n"])
        let event = RuleTestEvents.unreadIncreased(RuleTestEvents.chat())
        #expect(ruleSet.evaluate(event, now: Date()).map(\.outcome) == [.notSelected, .matched])
    }

    @Test("a condition that errors does not match, is logged once with rule and event id, and the other rules still match")
    func conditionErrors() throws {
        let ruleSet = try rules([
            "a-broken.yaml": "when: chat.no_such_field > 0\nsend: [audit]\n",
            "b-type.yaml": "when: dyn(chat.unread_count)\n",  // dyn: only known per event
            "c-fine.yaml": "when: chat.unread_count > 0\nthrottle: 1h\n",
        ])
        let event = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(), id: "event-42")
        let evaluations = ruleSet.evaluate(event, now: Date())
        #expect(evaluations.count == 3)
        guard case .conditionError(let message) = evaluations[0].outcome else {
            Issue.record("expected a condition error, got \(evaluations[0].outcome)")
            return
        }
        #expect(message.contains("no_such_field"))
        #expect(evaluations[1].outcome == .conditionError("the condition's value is of type int, not bool"))
        #expect(evaluations[2].outcome == .matched)

        let records = LogRecords()
        let logger = Logger(label: "rules-test") { _ in RecordingLogHandler(records: records) }
        let router = ruleSet.router(logger: logger)
        #expect(router(event) == [OutboxRoute(rule: "c-fine", sinks: ["stdout"], throttle: .seconds(3600))])
        let logged = records.all
        #expect(logged.count == 2)
        #expect(logged.map(\.level) == [.warning, .warning])
        #expect(logged.map { $0.metadata["rule"] } == ["a-broken", "b-type"])
        #expect(logged.allSatisfy { $0.metadata["event_id"] == "event-42" })
        #expect(logged[0].metadata["error"]?.contains("no_such_field") == true)
    }

    @Test("with no rules at all every event goes to stdout with no rule; with only disabled rules, nowhere")
    func noRules() throws {
        let logger = Logger(label: "rules-test") { _ in SwiftLogNoOpLogHandler() }
        let event = RuleTestEvents.added(RuleTestEvents.chat())
        #expect(RuleSet().router(logger: logger)(event) == [OutboxRoute(rule: nil, sinks: ["stdout"])])

        let disabled = try rules(["off.yaml": "enabled: false\n"])
        #expect(!disabled.isEmpty)
        #expect(disabled.evaluate(event, now: Date()).isEmpty)
        #expect(disabled.router(logger: logger)(event).isEmpty)
    }

    @Test("`muted` is whether the chat is muted when the event occurred")
    func mutedVariable() throws {
        let ruleSet = try rules(["m.yaml": "when: muted\n"])
        let at = RuleTestEvents.occurredAt
        func outcome(_ mutedUntil: JSONValue) -> RuleEvaluation.Outcome? {
            ruleSet.evaluate(RuleTestEvents.unreadIncreased(RuleTestEvents.chat(mutedUntil: mutedUntil)), now: at).first?.outcome
        }
        #expect(outcome(.int(-1)) == .matched)
        #expect(outcome(.int(Int64(at.timeIntervalSince1970) + 60)) == .matched)                // seconds, a minute later
        #expect(outcome(.int(Int64(at.timeIntervalSince1970 * 1000) + 60_000)) == .matched)     // milliseconds
        #expect(outcome(.string("2099-01-01T00:00:00Z")) == .matched)
        #expect(outcome(.int(Int64(at.timeIntervalSince1970) - 60)) == .conditionFalse)        // ended a minute before
        #expect(outcome(.null) == .conditionFalse)
        // Judged at `occurred_at`, not at `now`: evaluating much later changes nothing.
        let later = at.addingTimeInterval(86_400 * 365 * 10)
        let mutedForAMinute = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(mutedUntil: .int(Int64(at.timeIntervalSince1970) + 60)))
        #expect(ruleSet.evaluate(mutedForAMinute, now: later).first?.outcome == .matched)
    }

    @Test("`type` is the event type, shadowing CEL's built-in type()")
    func typeShadowing() throws {
        let ruleSet = try rules([
            "a.yaml": "when: type == \"chat.changed\"\n",
            "b.yaml": "when: type == \"chat.added\"\n",
            "c.yaml": "when: type.startsWith(\"chat.\") && source == \"main\" && \"unread.increased\" in kinds\n",
        ])
        let event = RuleTestEvents.unreadIncreased(RuleTestEvents.chat())
        #expect(ruleSet.evaluate(event, now: Date()).map(\.outcome) == [.matched, .conditionFalse, .matched])
    }

    @Test("`previous` is an empty map for chat.added, the stored chat otherwise; `changes` and `event` are there")
    func previousAndChanges() throws {
        let ruleSet = try rules([
            "a.yaml": "when: previous == {} && size(previous) == 0 && changes == {}\n",
            "b.yaml": "when: previous.unread_count == 0 && changes.unread_count.to == 3 && has(changes.unread_count)\n",
            "c.yaml": "when: event.chat_id == chat.id && event.previous == null && !has(event.rule)\n",
        ])
        let added = RuleTestEvents.added(RuleTestEvents.chat())
        let changed = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(unread: 3))
        #expect(ruleSet.evaluate(added, now: Date()).map(\.outcome).prefix(1) == [.matched])
        #expect(ruleSet.evaluate(added, now: Date())[2].outcome == .matched)
        #expect(ruleSet.evaluate(changed, now: Date()).map(\.outcome).prefix(2) == [.conditionFalse, .matched])
    }

    @Test("`now` is the evaluation time; time zone accessors work on it")
    func nowVariable() throws {
        let ruleSet = try rules([
            "a.yaml": "when: now == timestamp(\"2026-09-21T14:13:20Z\")\n",
            "b.yaml": "when: now.getHours(\"Europe/Paris\") == 16 && now.getDayOfWeek() == 1\n",
        ])
        let event = RuleTestEvents.added(RuleTestEvents.chat())
        #expect(ruleSet.evaluate(event, now: RuleTestEvents.occurredAt).map(\.outcome) == [.matched, .matched])
        #expect(ruleSet.evaluate(event, now: RuleTestEvents.occurredAt.addingTimeInterval(3600)).map(\.outcome)
            == [.conditionFalse, .conditionFalse])
        // The router reads its clock for each event.
        let logger = Logger(label: "rules-test") { _ in SwiftLogNoOpLogHandler() }
        let router = ruleSet.router(logger: logger, now: { RuleTestEvents.occurredAt })
        #expect(router(event).map(\.rule) == ["a", "b"])
    }

    @Test("account events: chat is null, previous and changes are empty maps")
    func accountEvents() throws {
        let ruleSet = try rules([
            "a.yaml": "on: account.error\nwhen: chat == null && previous == {} && changes == {} && event.error.status == 401 && !muted\n",
            "b.yaml": "when: chat.account_type == \"LINKEDIN\"\n",
        ])
        let event = Event(
            id: "e1", type: .accountError, kinds: [], occurredAt: Date(), source: "main",
            error: .object(["status": .int(401), "type": .string("errors/disconnected_account")]))
        let outcomes = ruleSet.evaluate(event, now: Date()).map(\.outcome)
        #expect(outcomes.first == .matched)
        if case .conditionError = outcomes.last {} else { Issue.record("selecting a field of null should be an error, got \(String(describing: outcomes.last))") }
    }

    @Test("quiet hours: inside, outside, wrapping midnight, and when the window ends")
    func quietHours() throws {
        let paris = TimeZone(identifier: "Europe/Paris")!
        let night = QuietHours(fromMinute: 22 * 60, toMinute: 7 * 60, timeZone: paris)
        let lunch = QuietHours(fromMinute: 12 * 60, toMinute: 14 * 60, timeZone: paris)
        func date(_ text: String) -> Date { Timestamp.parseISO8601(text)! }
        // Paris is UTC+2 in September.
        #expect(night.contains(date("2026-09-21T21:30:00Z")))        // 23:30 in Paris
        #expect(night.contains(date("2026-09-21T04:59:00Z")))        // 06:59
        #expect(!night.contains(date("2026-09-21T05:00:00Z")))       // 07:00: the window has ended
        #expect(!night.contains(date("2026-09-21T14:00:00Z")))
        #expect(lunch.contains(date("2026-09-21T10:00:00Z")))
        #expect(!lunch.contains(date("2026-09-21T09:59:00Z")))
        #expect(night.end(after: date("2026-09-21T21:30:00Z")) == date("2026-09-22T05:00:00Z"))
        #expect(night.end(after: date("2026-09-21T14:00:00Z")) == date("2026-09-21T14:00:00Z"))
    }
}

/// Log records kept by ``RecordingLogHandler``.
final class LogRecords: @unchecked Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lock = NSLock()
    private var records: [Record] = []
    var all: [Record] { lock.withLock { records } }
    func append(_ record: Record) { lock.withLock { records.append(record) } }
}

/// A swift-log handler that keeps what it is given, to check what was logged.
struct RecordingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        records.append(.init(level: event.level, message: event.message.description, metadata: merged.mapValues(\.description)))
    }
}
