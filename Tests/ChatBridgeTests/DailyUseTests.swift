import Foundation
import Logging
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Rules
@testable import Runtime
@testable import Store

// Issue 11, the pure halves: what `rules test --event` reads, what `eval` binds, how log
// lines look, when a source counts as stale, what "address in use" says.

@Suite("Daily use: inputs, eval bindings, log lines, staleness")
struct DailyUseTests {
    // MARK: rules test --event

    @Test func aPrettyPrintedEventIsOneEvent() throws {
        let event = RuleTestEvents.unreadIncreased(RuleTestEvents.chat()).json()
        let pretty = event.prettyStringForTest
        #expect(pretty.contains("\n"), "the input spans lines, as `jq .` writes it")
        let values = try RuleTestInput.events(in: Array(pretty.utf8))
        #expect(values == [event])
    }

    @Test func jsonLinesAreOneEventEach() throws {
        let first = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(id: "a")).json()
        let second = RuleTestEvents.added(RuleTestEvents.chat(id: "b")).json()
        let text = first.compactString + "\n\n" + second.compactString + "\n"
        #expect(try RuleTestInput.events(in: Array(text.utf8)) == [first, second])
        let array = JSONValue.array([first, second]).compactString
        #expect(try RuleTestInput.events(in: Array(array.utf8)) == [first, second])
    }

    @Test func aBrokenLineIsNamed() {
        let text = #"{"type":"chat.added"}"# + "\n{nope\n"
        #expect(throws: RuleTestInputError.self) { try RuleTestInput.events(in: Array(text.utf8)) }
        do {
            _ = try RuleTestInput.events(in: Array(text.utf8))
        } catch {
            #expect(error.message.hasPrefix("line 2 is not JSON"), "\(error)")
        }
        #expect(throws: RuleTestInputError.self) { try RuleTestInput.events(in: Array("  \n".utf8)) }
    }

    // MARK: eval

    @Test func evalWithAnEventBindsWhatARuleSees() throws {
        let added = RuleTestEvents.added(RuleTestEvents.chat(unread: 2))
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        func value(_ expression: String) throws -> JSONValue {
            try CELEvalTool.evaluate(expression: expression, event: added, now: now).get().value
        }
        #expect(try value("has(previous.unread_count)") == .bool(false), "previous is {} for an added chat")
        #expect(try value("chat.unread_count") == .int(2))
        #expect(try value("type") == .string("chat.added"))
        #expect(try value(#""chat.added" in kinds"#) == .bool(true))
        #expect(try value("source") == .string("main"))
        #expect(try value("muted") == .bool(false))
        #expect(try value("event.id") == .string(added.id))
        #expect(try value("changes") == .object(JSONObject()))
        #expect(try value(#"now.getHours("UTC")"#) == .int(14))
        // The same condition a rule would use, with the same result as the router.
        let rules = try RuleSet.parse(yaml: "name: r\nwhen: has(previous.unread_count)\n", file: "r.yaml")
        #expect(rules.evaluate(added, now: now).first?.outcome == .conditionFalse)
    }

    @Test func plainEvalHasNow() throws {
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let result = try CELEvalTool.evaluate(
            expression: #"now.getHours("Europe/Paris")"#, variables: .object(JSONObject()), now: now).get()
        #expect(result.value == .int(16) && result.type == "int")
        // --vars may bind its own `now`.
        let own = try CELEvalTool.evaluate(expression: "now", variables: ["now": .int(3)], now: now).get()
        #expect(own.value == .int(3))
        // --jsonl (the conformance runner) stays without `now`.
        #expect(CELEvalTool.evaluateJSONLine(#"{"expr": "now"}"#).contains("undeclared reference"))
    }

    // MARK: log lines

    @Test func textLogLinesPutTheMessageFirst() {
        let line = StderrLogHandler.line(
            format: .text, level: .info, message: "poll complete",
            fields: [("chats", .int(40)), ("source", .string("main")), ("note", .string("two words")),
                     ("sinks", .array([.string("hook"), .string("stdout")]))],
            at: Date(timeIntervalSince1970: 0))
        #expect(line == #"1970-01-01T00:00:00.000Z info poll complete chats=40 source=main note="two words" sinks=hook,stdout"# + "\n")
        // A message of several lines stays one log line: every line feed written as \n.
        let lines = StderrLogHandler.line(
            format: .text, level: .error, message: "a\nb\r\nc é\n", fields: [], at: Date(timeIntervalSince1970: 0))
        #expect(lines == "1970-01-01T00:00:00.000Z error a\\nb\r\\nc é\\n\n")
    }

    @Test func secretsAreHiddenAlsoAsDescriptionsAndJSONQuoteThem() {
        // A key read from a file with Windows line endings ends with "\r"; an error's
        // description quotes it escaped, where the raw value is not found.
        let redactor = LogRedactor(secrets: ["key-one\r", "key\u{01}two"])
        #expect(redactor.redact(#"invalidHeaderFieldValues(["key-one\r"])"#) == #"invalidHeaderFieldValues(["<redacted>"])"#)
        #expect(redactor.redact(#"["key\u{01}two"]"#) == #"["<redacted>"]"#)
        #expect(redactor.redact(#"{"k":"key\u0001two"}"#) == #"{"k":"<redacted>"}"#)
        #expect(redactor.redact("raw key-one\r") == "raw <redacted>")
    }

    @Test func whatAVariablePutsIntoASecretIsASecretAndNothingElse() throws {
        let yaml = """
            sources:
              - {name: "${SOURCE}", url: "http://127.0.0.1:1", api_key: "${KEY}"}
            store: "${STATE}/chatbridge.sqlite"
            sinks:
              hook: {type: webhook, url: "https://hooks.example/services/${HOOK_TOKEN}"}
            """
        let environment = ["KEY": "key-secret-1", "HOOK_TOKEN": "hook-token-secret-2", "STATE": "/var/lib/bridge", "SOURCE": "main"]
        let configuration = try ChatBridgeConfiguration.parse(yaml: yaml, file: "chatbridge.yaml", environment: environment)
        #expect(configuration.secretValues.contains("hook-token-secret-2"), "a token inside a URL is hidden alone too")
        #expect(!configuration.secretValues.contains("/var/lib/bridge") && !configuration.secretValues.contains("main"),
                "a store path or a source name from the environment stays readable in logs")
        let redactor = LogRedactor(secrets: configuration.secretValues)
        #expect(redactor.redact("301 to https://other.example/services/hook-token-secret-2 for main")
            == "301 to https://other.example/services/<redacted> for main")
    }

    @Test func jsonLogValuesKeepTheirTypes() throws {
        let redactor = LogRedactor(secrets: ["sk-secret-1234"])
        #expect(StderrLogHandler.jsonValue(.stringConvertible(50), redactor: redactor) == .int(50))
        #expect(StderrLogHandler.jsonValue(.stringConvertible(true), redactor: redactor) == .bool(true))
        #expect(StderrLogHandler.jsonValue(.stringConvertible(0.25), redactor: redactor) == .double(0.25))
        #expect(StderrLogHandler.jsonValue(.string("50"), redactor: redactor) == .string("50"))
        #expect(StderrLogHandler.jsonValue(.string("key sk-secret-1234"), redactor: redactor) == .string("key <redacted>"))
        let line = StderrLogHandler.line(
            format: .json, level: .info, message: "poll complete",
            fields: [("chats", .int(50)), ("baseline", .bool(false))], at: Date(timeIntervalSince1970: 0))
        let object = try JSONValue.parse(line)
        #expect(object["chats"] == .int(50) && object["baseline"] == .bool(false) && object["msg"] == .string("poll complete"))
    }

    // MARK: staleness

    @Test func aSubSecondIntervalIsNotStaleWithinTheMinimumAllowance() throws {
        let now = Date(timeIntervalSince1970: 1_764_000_000)
        let configuration = try ChatBridgeConfiguration.parse(
            yaml: """
                sources:
                  - {name: main, url: "http://127.0.0.1:1", api_key: k, interval: 200ms}
                """,
            file: "chatbridge.yaml", environment: [:])
        func report(sinceSuccess seconds: Double) -> StatusReport {
            var record = SourceRecord(name: "main", filterFingerprint: "f")
            record.baselineDone = true
            record.lastSuccessAt = now.addingTimeInterval(-seconds)
            record.lastPollAt = now.addingTimeInterval(-seconds)
            record.lastOutcome = "complete"
            return StatusReport.make(configuration: configuration, records: ["main": record], counts: [:], now: now)
        }
        #expect(!report(sinceSuccess: 0.8).needsAttention, "\(report(sinceSuccess: 0.8).lines)")
        #expect(!report(sinceSuccess: 9).needsAttention)
        let stale = report(sinceSuccess: 12)
        #expect(stale.needsAttention && stale.sources[0].problem == "no complete poll for 12s")
        #expect(PollFreshness.age(0.84) == "0.8s")

        let watched = HealthReport.WatchedSource(
            name: "main", interval: .milliseconds(200), watchedSince: now.addingTimeInterval(-60))
        var record = SourceRecord(name: "main", filterFingerprint: "f")
        record.lastSuccessAt = now.addingTimeInterval(-0.8)
        #expect(HealthReport.evaluate(sources: [watched], records: ["main": record], storeProblem: nil, now: now).isHealthy)
        // The records could not be read: the store is the problem, not a source that
        // "never polled since start" (its last poll is unknown, not missing).
        let unread = HealthReport.evaluate(sources: [watched], records: nil, storeProblem: "store: no answer within 3s", now: now)
        #expect(!unread.isHealthy && unread.reasons == ["store: no answer within 3s"])
        #expect(unread.sources.map(\.lastSuccessAt) == [nil])
    }

    /// A probe must answer in time even when what it waits for never does (a database
    /// paused mid-answer ignores cancellation, so a task group would wait for it).
    @Test func aSharedTaskIsWaitedForAtMostItsDeadline() async {
        let never = Task { () -> Int in
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().asyncAfter(deadline: .now() + 20) { continuation.resume() }
            }
            return 1
        }
        let start = ContinuousClock.now
        #expect(await value(of: never, within: .milliseconds(200)) == nil)
        #expect(ContinuousClock.now - start < .seconds(10), "answered at the deadline, not when the task ended")
        let quick = Task { 42 }
        #expect(await value(of: quick, within: .seconds(10)) == 42)
        #expect(await value(of: quick, within: .seconds(10)) == 42, "a finished task answers every caller")
    }

    // MARK: address in use

    @Test func addressInUseNamesTheAddressAndWhatToDo() {
        struct FakeSocketError: Error, CustomStringConvertible {
            var description: String { "bind(descriptor:ptr:bytes:): Address already in use (errno: 98)" }
        }
        let recognized = AddressInUseError.recognizing(
            FakeSocketError(), host: "127.0.0.1", port: 13111, advice: "choose another --port")
        let error = recognized as? AddressInUseError
        #expect(error?.address == "127.0.0.1:13111")
        #expect("\(recognized)".contains("cannot listen on 127.0.0.1:13111") && "\(recognized)".hasSuffix("choose another --port"))
        struct Other: Error {}
        #expect(AddressInUseError.recognizing(Other(), host: "h", port: 1, advice: "") is Other)
    }
}

extension JSONValue {
    /// Indented JSON text, as `jq .` writes it (members in their order).
    var prettyStringForTest: String { prettyLines(indent: "").joined(separator: "\n") }

    private func prettyLines(indent: String) -> [String] {
        let inner = indent + "  "
        switch self {
        case .array(let items) where !items.isEmpty:
            var lines = ["["]
            for (index, item) in items.enumerated() {
                var itemLines = item.prettyLines(indent: inner)
                itemLines[0] = inner + itemLines[0]
                if index < items.count - 1 { itemLines[itemLines.count - 1] += "," }
                lines += itemLines
            }
            return lines + [indent + "]"]
        case .object(let object) where !object.isEmpty:
            var lines = ["{"]
            let members = Array(object)
            for (index, member) in members.enumerated() {
                var memberLines = member.value.prettyLines(indent: inner)
                memberLines[0] = inner + JSONValue.string(member.key).compactString + ": " + memberLines[0]
                if index < members.count - 1 { memberLines[memberLines.count - 1] += "," }
                lines += memberLines
            }
            return lines + [indent + "}"]
        default:
            return [compactString]
        }
    }
}

@Suite("chatbridge explain: verdicts from rules and the store's facts")
struct EventExplanationTests {
    let event = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(accountType: "LINKEDIN", unread: 3))

    func rules() throws -> RuleSet {
        try RuleSet.parse(
            yaml: """
                rules:
                  - {name: quiet, on: [unread.increased], quiet_hours: {from: "14:00", to: "15:00"}}
                  - {name: digested, digest: 10m}
                  - {name: now-false, when: 'chat.account_type == "WHATSAPP" && has(chat.nope)'}
                  - {name: fresh}
                  - {name: off, enabled: false}
                """,
            file: "rules.yaml")
    }

    func row(_ id: Int64, rule: String, status: String = "pending", attempts: Int = 0) -> DeliveryRecord {
        DeliveryRecord(id: id, eventID: event.id, rule: rule, sink: "stdout", status: status, attempts: attempts)
    }

    @Test func everyVerdictWithItsReason() throws {
        let facts = EventDeliveryFacts(
            deliveries: [row(1, rule: "quiet"), row(2, rule: "now-false", status: "delivered", attempts: 1),
                         row(3, rule: "removed-rule", status: "dead", attempts: 10)],
            digests: [DigestMembership(
                digestID: 4, rule: "digested", sink: "stdout", closesAt: event.occurredAt.addingTimeInterval(600), delivery: nil)])
        let explanation = EventExplanation.make(
            event: event, rules: try rules(), facts: facts, throttledBy: [:], rulesChangedSince: ["rules.yaml"])
        let byRule = Dictionary(explanation.verdicts.map { ($0.rule ?? "", $0) }) { a, _ in a }
        #expect(byRule["quiet"]?.verdict == "postponed")
        #expect(byRule["quiet"]?.reason.contains("until 2026-09-21T15:00:00.000Z") == true, "\(byRule["quiet"]!.reason)")
        #expect(byRule["digested"]?.verdict == "digest" && byRule["digested"]?.reason.contains("digest 4") == true)
        let falseNow = try #require(byRule["now-false"])
        #expect(falseNow.verdict == "condition_false")
        #expect(falseNow.reason.contains(#"chat.account_type = "LINKEDIN""#) && falseNow.reason.contains("chat.nope = absent"),
                "\(falseNow.reason)")
        #expect(falseNow.reason.contains("at detection it matched"), "rows under older rules are shown: \(falseNow.reason)")
        #expect(byRule["fresh"]?.verdict == "matched_no_delivery")
        #expect(byRule["off"]?.verdict == "disabled")
        #expect(byRule["removed-rule"]?.verdict == "delivered_under_older_rules")
        #expect(explanation.lines.contains { $0.hasPrefix("note: the rules changed since the event") })
        #expect(explanation.json["rules"]?.arrayValue?.count == 6)
    }

    @Test func throttledSaysUntilWhenAndByWhichEvent() throws {
        let rules = try RuleSet.parse(yaml: "name: t\nthrottle: 15m\n", file: "t.yaml")
        let earlier = ThrottlingDelivery(eventID: "earlier-event", sink: "stdout", createdAt: event.occurredAt.addingTimeInterval(-60))
        let explanation = EventExplanation.make(
            event: event, rules: rules, facts: EventDeliveryFacts(deliveries: [], digests: []),
            throttledBy: ["t": earlier], rulesChangedSince: [])
        let verdict = try #require(explanation.verdicts.first)
        #expect(verdict.verdict == "throttled")
        #expect(verdict.reason == "matched; throttled until 2026-09-21T14:27:20.000Z by the delivery of event earlier-event to stdout")
    }

    @Test func readPathsSkipStringsAndMethodNames() throws {
        let rules = try RuleSet.parse(
            yaml: #"{name: r, when: 'chat.name.matches("chat.secret") && "x" in kinds && previous.unread_count < chat.unread_count && now.getHours("UTC") > 1'}"#,
            file: "r.yaml")
        #expect(rules.rules[0].condition.readPaths == ["chat.name", "kinds", "previous.unread_count", "chat.unread_count", "now"])
    }
}
