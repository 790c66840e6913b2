import Crypto
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

// The pure parts of delivery, on plain values: retry schedule, Retry-After, outcome
// classification, templates, the default summary, body formats, signing.

/// A deterministic generator (SplitMix64), so that jittered schedules can be pinned.
struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A generator that always answers the same word. `.max` gives the largest wait (0 would
/// make the standard library's unbiased sampling loop for ever).
struct FixedRandom: RandomNumberGenerator, Sendable {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}

/// Parses JSON text written in a test.
func json(_ text: String) -> JSONValue {
    do { return try JSONValue.parse(text) } catch { fatalError("bad test JSON: \(error): \(text)") }
}

/// An event as the store keeps it (no rule).
///
/// - Parameters:
///   - name: the chat's `name` as JSON text (`"null"` for none); hostile strings go
///     through ``JSONValue/string(_:)`` and `nameValue`.
///   - changes, extraChat: JSON object texts.
func sampleEvent(
    id: String = "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77",
    type: String = "chat.changed",
    kinds: [String] = ["unread.increased"],
    accountType: JSONValue = .string("LINKEDIN"),
    chatID: String = "chat_456",
    name: JSONValue = .string("Jane Doe"),
    changes: String = #"{"unread_count":{"from":0,"to":3}}"#,
    extraChat: String = "{}"
) -> JSONValue {
    var chat = json(#"{"object":"Chat","id":"","account_id":"acc_123","account_type":null,"name":null,"unread_count":3,"archived":0,"folder":["INBOX"]}"#).objectValue!
    chat["id"] = .string(chatID)
    chat["account_type"] = accountType
    chat["name"] = name
    for member in json(extraChat).objectValue! { chat[member.key] = member.value }
    var event = json(#"{"id":"","type":"","kinds":[],"occurred_at":"2026-11-24T22:05:15.123Z","source":"main","account_id":"acc_123"}"#).objectValue!
    event["id"] = .string(id)
    event["type"] = .string(type)
    event["kinds"] = .array(kinds.map { .string($0) })
    event["account_type"] = accountType
    event["chat_id"] = .string(chatID)
    event["chat"] = .object(chat)
    event["previous"] = .null
    event["changes"] = json(changes)
    return .object(event)
}

/// Chat names that try to break out of every place a name can land.
let hostileNames: [String] = [
    #"$(touch /tmp/chatbridge-pwned)"#,
    "`touch /tmp/chatbridge-pwned`",
    #"Robert"); DROP TABLE events;--"#,
    #"a"b'c\d"#,
    "; rm -rf / #",
    "<script>alert(1)</script> & <!channel> @everyone",
    "line1\nline2\r\n\u{2028}\u{2029}\u{0}\u{7}",
    "{{chat.id}} {{{x}}} {{#a}}",
    "\u{202E}evil\u{202C}",
    String(repeating: "👨‍👩‍👧‍👦", count: 300),
    "\u{FFFD}\u{D7FF}\u{E000}",
]

@Suite("Delivery: retry schedule")
struct DeliveryRetryPolicyTests {
    let policy = RetryPolicy(maxAttempts: 5, initialBackoff: .seconds(1), maxBackoff: .seconds(10))
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    @Test func ceilingDoublesAndIsCapped() {
        #expect(policy.backoffCeiling(afterFailedAttempt: 1) == .seconds(1))
        #expect(policy.backoffCeiling(afterFailedAttempt: 2) == .seconds(2))
        #expect(policy.backoffCeiling(afterFailedAttempt: 3) == .seconds(4))
        #expect(policy.backoffCeiling(afterFailedAttempt: 4) == .seconds(8))
        #expect(policy.backoffCeiling(afterFailedAttempt: 5) == .seconds(10))
        #expect(policy.backoffCeiling(afterFailedAttempt: 500) == .seconds(10), "no overflow for huge attempt numbers")
    }

    @Test func fullJitterStaysWithinZeroAndTheCeiling() {
        var random = SeededRandom(seed: 42)
        var seen: Set<Int64> = []
        for attempt in 1...8 {
            let ceiling = policy.backoffCeiling(afterFailedAttempt: attempt)
            for _ in 0..<200 {
                let delay = policy.delay(afterFailedAttempt: attempt, using: &random)
                #expect(delay >= .zero && delay <= ceiling)
                seen.insert(delay.clampedNanoseconds)
            }
        }
        #expect(seen.count > 1000, "jitter spreads the waits")
    }

    @Test func sameSeedSameSchedule() {
        var a = SeededRandom(seed: 7), b = SeededRandom(seed: 7)
        let first = (1...4).map { policy.delay(afterFailedAttempt: $0, using: &a) }
        let second = (1...4).map { policy.delay(afterFailedAttempt: $0, using: &b) }
        #expect(first == second)
    }

    @Test func givesUpAfterMaxAttempts() {
        var random = SeededRandom(seed: 1)
        for attempt in 1..<5 {
            guard case .retry(let notBefore) = policy.decision(afterFailedAttempt: attempt, now: now, retryAfter: nil, using: &random)
            else {
                Issue.record("attempt \(attempt) should be retried")
                continue
            }
            #expect(notBefore >= now)
            #expect(notBefore <= now.addingTimeInterval((policy.backoffCeiling(afterFailedAttempt: attempt)).seconds))
        }
        #expect(policy.decision(afterFailedAttempt: 5, now: now, retryAfter: nil, using: &random) == .giveUp)
        #expect(RetryPolicy(maxAttempts: 1).decision(afterFailedAttempt: 1, now: now, retryAfter: nil, using: &random) == .giveUp)
    }

    @Test func retryAfterWinsWhenLater() {
        var random = FixedRandom(value: .max)
        let later = now.addingTimeInterval(3600)
        #expect(policy.decision(afterFailedAttempt: 1, now: now, retryAfter: later, using: &random) == .retry(notBefore: later))
        // An earlier Retry-After does not shorten the backoff.
        let earlier = now.addingTimeInterval(0.001)
        guard case .retry(let notBefore) = policy.decision(afterFailedAttempt: 2, now: now, retryAfter: earlier, using: &random)
        else { Issue.record("should retry"); return }
        #expect(notBefore > earlier)
    }

    @Test func retryAfterHeaderForms() throws {
        #expect(RetryAfter.parse("120", now: now) == now.addingTimeInterval(120))
        #expect(RetryAfter.parse(" 0 ", now: now) == now)
        let imf = try #require(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now))
        #expect(imf.timeIntervalSince1970 == 784_111_777)
        #expect(RetryAfter.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: now)?.timeIntervalSince1970 == 784_111_777)
        #expect(RetryAfter.parse("Sun Nov  6 08:49:37 1994", now: now)?.timeIntervalSince1970 == 784_111_777)
        #expect(RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now: now)?.timeIntervalSince1970 == 1_445_412_480)
        for bad in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT"] {
            #expect(RetryAfter.parse(bad, now: now) == nil, "\(bad)")
        }
    }
}

@Suite("Delivery: outcome classification")
struct DeliveryOutcomeTests {
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    func classify(_ status: Int, location: String? = nil, retryAfter: String? = nil, body: String = "") -> DeliveryOutcome {
        HTTPOutcome.classify(status: status, location: location, retryAfter: retryAfter, body: Array(body.utf8), sink: "team", now: now)
    }

    @Test func successIsDelivered() {
        for status in [200, 201, 202, 204, 299] { #expect(classify(status) == .delivered(status: status)) }
    }

    @Test func transientFailuresAreRetried() {
        for status in [408, 425, 429, 500, 502, 503, 504, 599] {
            guard case .retry(let kept, let error, nil) = classify(status, body: "busy") else {
                Issue.record("\(status) should be retried")
                continue
            }
            #expect(kept == status)
            #expect(error == "sink team: HTTP \(status): busy")
        }
        #expect(classify(429, retryAfter: "30") == .retry(status: 429, error: "sink team: HTTP 429", retryAfter: now.addingTimeInterval(30)))
        #expect(classify(503, retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT").status == 503)
    }

    @Test func redirectsAreDeadSayingWhereTheyPointButNeverTheHostOrPath() {
        // An http-to-https redirect repeats the URL, whose host and path may be credentials.
        func dead(_ status: Int, _ location: String?) -> String? {
            guard case .dead(status, let error) = HTTPOutcome.classify(
                status: status, location: location, retryAfter: nil, body: [], sink: "team", now: now,
                requestURL: "http://eo1234secret.m.pipedream.net/hooks/TOKEN-1")
            else { return nil }
            return error
        }
        #expect(dead(301, "https://eo1234secret.m.pipedream.net/hooks/TOKEN-1")
            == "sink team: HTTP 301 redirect to https on the same host (Location hidden), not followed for POST")
        #expect(dead(308, "https://elsewhere.example/x") == "sink team: HTTP 308 redirect to https on another host (Location hidden), not followed for POST")
        #expect(dead(302, "/elsewhere/TOKEN-3") == "sink team: HTTP 302 redirect to a path on the same host (Location hidden), not followed for POST")
        #expect(dead(307, nil) == "sink team: HTTP 307 redirect (no Location), not followed for POST")
    }

    @Test func whatTheRequestSentIsHiddenInTheBodyExcerpt() {
        let hidden = HTTPExchange.echoable(url: "https://h.example/hooks/T%20K-secret?key=V-secret-1&x=1", headerValues: ["Bearer TOKEN-22222"])
        #expect(hidden == [
            "/hooks/T%20K-secret", "Bearer TOKEN-22222", "key=V-secret-1&x=1", "/hooks/T K-secret", "key=V-secret-1",
            "T%20K-secret", "TOKEN-22222", "T K-secret", "V-secret-1",
        ])
        let echoed = HTTPOutcome.classify(
            status: 400, location: nil, retryAfter: nil, body: Array("no route /hooks/T K-secret; token TOKEN-22222, key V-secret-1".utf8),
            sink: "team", now: now, hiding: hidden)
        #expect(echoed == .dead(status: 400, error: "sink team: HTTP 400: no route <redacted>; token <redacted>, key <redacted>"))
        // Cut at 1 KiB in the middle of a token: its start is hidden too.
        let cut = Array((String(repeating: "x", count: 1018) + "TOKEN-22222").utf8)
        #expect(HTTPOutcome.excerpt(cut, hiding: hidden) == String(repeating: "x", count: 1018) + "<redacted>")
    }

    @Test func otherClientErrorsAreDeadWithTheStartOfTheBody() {
        let body = "not found: " + String(repeating: "é", count: 2000)
        guard case .dead(404, let error) = classify(404, body: body) else {
            Issue.record("404 should be dead")
            return
        }
        #expect(error.hasPrefix("sink team: HTTP 404: not found: é"))
        let excerpt = HTTPOutcome.bodyExcerpt(Array(body.utf8))
        #expect(excerpt.utf8.count <= 1024 && excerpt.utf8.count >= 1020, "1 KiB, cut at a character boundary")
        #expect(!excerpt.contains("\u{FFFD}"))
        for status in [400, 401, 403, 410, 422] {
            guard case .dead = classify(status) else { Issue.record("\(status) should be dead"); continue }
        }
    }

    @Test func errorBodiesStayOnOneLine() {
        let excerpt = HTTPOutcome.bodyExcerpt(Array("line1\nline2\r\n\u{0}x".utf8))
        #expect(!excerpt.contains("\n") && !excerpt.contains("\r") && !excerpt.contains("\u{0}"))
    }

    @Test func connectionFailuresAreRetried() {
        #expect(HTTPOutcome.failure("connection refused", sink: "team") == .retry(status: nil, error: "sink team: connection refused"))
    }
}

@Suite("Delivery: templates and the default text")
struct DeliveryTemplateTests {
    @Test func rendersPathsSectionsAndNestedChanges() throws {
        let event = sampleEvent(kinds: ["unread.increased", "chat.unarchived"])
        let template = try DeliveryTemplate(
            "{{chat.name}}|{{#kinds}}{{.}} {{/kinds}}|{{changes.unread_count.from}}->{{changes.unread_count.to}}|{{rule}}")
        var withRule = event.objectValue!
        withRule["rule"] = .string("vip")
        #expect(template.render(.object(withRule)) == "Jane Doe|unread.increased chat.unarchived |0->3|vip")
    }

    @Test func noHTMLEscaping() throws {
        let name = #"<b>Tom & "Jerry" 'x'</b>"#
        let event = sampleEvent(name: .string(name))
        #expect(try DeliveryTemplate("{{chat.name}}").render(event) == name)
        #expect(try DeliveryTemplate("{{{chat.name}}}").render(event) == name)
        #expect(try DeliveryTemplate("{{&chat.name}}").render(event) == name)
        // Inside sections too.
        #expect(try DeliveryTemplate("{{#chat}}{{name}}{{/chat}}").render(event) == name)
    }

    @Test func hostileValuesAreNotTemplates() throws {
        let event = sampleEvent(name: .string("{{chat.id}} {{#kinds}}x{{/kinds}}"))
        #expect(try DeliveryTemplate("{{chat.name}}").render(event) == "{{chat.id}} {{#kinds}}x{{/kinds}}")
    }

    @Test func nullsAndMissingValuesAreEmpty() throws {
        let event = sampleEvent(name: .null)
        #expect(try DeliveryTemplate("[{{chat.name}}][{{chat.nothing}}][{{^chat.name}}no name{{/chat.name}}]").render(event)
            == "[][][no name]")
    }

    @Test func numbersAndBooleansRenderAsJSONDoes() throws {
        let event = sampleEvent(extraChat: #"{"ratio":2.5,"flag":true,"big":9007199254740993}"#)
        #expect(try DeliveryTemplate("{{chat.unread_count}} {{chat.ratio}} {{chat.flag}} {{chat.big}}").render(event)
            == "3 2.5 true 9007199254740993")
    }

    @Test func layoutOfTheTemplateIsKept() throws {
        let event = sampleEvent()
        #expect(try DeliveryTemplate("\nHello {{chat.name}}\n").render(event) == "\nHello Jane Doe\n")
        #expect(try DeliveryTemplate("{{#kinds}}\n- {{.}}\n{{/kinds}}\n").render(event) == "- unread.increased\n")
        #expect(try DeliveryTemplate("").render(event) == "")
    }

    @Test func summaryIsAvailable() throws {
        #expect(try DeliveryTemplate("🔔 {{summary}}").render(sampleEvent()) == "🔔 LinkedIn · Jane Doe: 3 unread (was 0)")
    }

    @Test func invalidTemplatesSayWhere() {
        #expect(throws: TemplateError.self) { try DeliveryTemplate.validate("{{#chat}}never closed") }
        #expect(throws: TemplateError.self) { try DeliveryTemplate.validate("{{#a}}x{{/b}}") }
        #expect(throws: TemplateError.self) { try DeliveryTemplate.validate("ok\n{{chat.name") }
        for unclosed in ["{{chat.name}", "{{chat.name"] {
            let error = #expect(throws: TemplateError.self) { try DeliveryTemplate.validate(unclosed) }
            #expect(error?.message == "a tag is not closed (missing \"}}\")", "\(unclosed): \(String(describing: error?.message))")
        }
        do {
            try DeliveryTemplate.validate("line one\nline {{#a}}two{{/b}}")
            Issue.record("should not parse")
        } catch {
            #expect(error.line == 2, "\(error)")
            #expect(error.description.contains("line 2"))
        }
        #expect((try? DeliveryTemplate.validate("{{chat.name}} {{#kinds}}{{.}}{{/kinds}}")) != nil)
    }

    @Test func accountTypesArePrettified() {
        #expect(DeliverySummary.accountTypeName("LINKEDIN") == "LinkedIn")
        #expect(DeliverySummary.accountTypeName("WHATSAPP") == "WhatsApp")
        #expect(DeliverySummary.accountTypeName("TWITTER") == "X")
        #expect(DeliverySummary.accountTypeName("INSTAGRAM") == "Instagram")
        #expect(DeliverySummary.accountTypeName("TELEGRAM") == "Telegram")
        #expect(DeliverySummary.accountTypeName("MESSENGER") == "Messenger")
        #expect(DeliverySummary.accountTypeName("SLACK") == "Slack")
        #expect(DeliverySummary.accountTypeName("NEW_NETWORK") == "New network")
    }

    @Test func summaryForEveryKind() {
        func summary(_ kinds: [String], changes: String = "{}", name: JSONValue = .string("Jane Doe"), type: String = "chat.changed",
                     extraChat: String = "{}") -> String {
            DeliverySummary.text(for: sampleEvent(type: type, kinds: kinds, name: name, changes: changes, extraChat: extraChat))
        }
        #expect(summary(["unread.increased"], changes: #"{"unread_count":{"from":0,"to":3}}"#) == "LinkedIn · Jane Doe: 3 unread (was 0)")
        #expect(summary(["unread.decreased"], changes: #"{"unread_count":{"from":5,"to":3}}"#) == "LinkedIn · Jane Doe: 3 unread (was 5)")
        #expect(summary(["unread.cleared"], changes: #"{"unread_count":{"from":4,"to":0}}"#) == "LinkedIn · Jane Doe: all read (was 4 unread)")
        #expect(summary(["chat.added"], type: "chat.added") == "LinkedIn · Jane Doe: new chat, 3 unread")
        #expect(summary(["chat.removed"], type: "chat.removed") == "LinkedIn · Jane Doe: chat removed")
        #expect(summary(["chat.archived"]) == "LinkedIn · Jane Doe: archived")
        #expect(summary(["chat.unarchived", "chat.pinned"]) == "LinkedIn · Jane Doe: unarchived, pinned")
        #expect(summary(["chat.unpinned", "chat.muted"]) == "LinkedIn · Jane Doe: unpinned, muted")
        #expect(summary(["chat.unmuted"]) == "LinkedIn · Jane Doe: unmuted")
        #expect(summary(["chat.mute_changed"]) == "LinkedIn · Jane Doe: mute changed")
        #expect(summary(["chat.renamed"], changes: #"{"name":{"from":"Old","to":"New"}}"#, name: .string("New")) == "LinkedIn · New: renamed Old → New")
        #expect(summary(["chat.activity"]) == "LinkedIn · Jane Doe: new activity")
        #expect(summary(["chat.read_only_changed"], changes: #"{"read_only":{"from":0,"to":1}}"#) == "LinkedIn · Jane Doe: now read-only")
        #expect(summary(["chat.moved"], changes: #"{"folder":{"from":["INBOX"],"to":["ARCHIVE","X"]}}"#)
            == "LinkedIn · Jane Doe: moved to ARCHIVE, X")
        #expect(summary(["chat.updated"], changes: #"{"subject":{"from":"a","to":"b"},"unread_count":{"from":1,"to":2}}"#)
            == "LinkedIn · Jane Doe: updated subject")
    }

    @Test func summaryFallsBackWhenTheNameIsMissing() {
        #expect(DeliverySummary.text(for: sampleEvent(name: .null)) == "LinkedIn · chat chat_456: 3 unread (was 0)")
        #expect(DeliverySummary.text(for: sampleEvent(name: .string("  "))) == "LinkedIn · chat chat_456: 3 unread (was 0)")
        #expect(DeliverySummary.text(for: sampleEvent(name: .null, extraChat: #"{"subject":"Offer"}"#)) == "LinkedIn · Offer: 3 unread (was 0)")
        #expect(DeliverySummary.text(for: sampleEvent(accountType: .null)) == "Jane Doe: 3 unread (was 0)")
    }

    @Test func summaryOfAccountEvents() {
        let error = json(#"""
            {"id":"e1","type":"account.error","kinds":[],"source":"main","account_id":"acc_1","account_type":"WHATSAPP",
             "error":{"status":401,"type":"errors/disconnected_account","title":"Disconnected account","detail":"..."}}
            """#)
        #expect(DeliverySummary.text(for: error) == "WhatsApp · main: account error: Disconnected account (HTTP 401)")
        let recovered = json(#"{"id":"e2","type":"account.recovered","kinds":[],"source":"main","account_type":null}"#)
        #expect(DeliverySummary.text(for: recovered) == "main: account recovered")
        let digest = json(#"{"type":"digest","rule":"vip","count":4,"events":[]}"#)
        #expect(DeliverySummary.text(for: digest) == "vip: 4 changes")
    }

    @Test func summaryIsOneLineWhateverTheName() {
        for name in hostileNames {
            let text = DeliverySummary.text(for: sampleEvent(name: .string(name)))
            #expect(!text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" })
        }
    }
}

@Suite("Delivery: body formats")
struct DeliveryFormatTests {
    let event = sampleEvent()

    @Test func jsonIsTheEventWithRule() throws {
        let request = DeliveryRequest(eventID: "e", event: event, rule: "vip", sink: "s")
        let body = DeliveryFormat.json.body(event: request.eventWithRule, text: "ignored")
        let parsed = try JSONValue.parse(body)
        #expect(parsed["rule"] == .string("vip"))
        #expect(parsed["chat"] == event["chat"])
        #expect(parsed.objectValue?.keys.last == "rule")
        let noRule = DeliveryRequest(eventID: "e", event: event, rule: nil, sink: "s")
        #expect(noRule.eventWithRule == event)
    }

    @Test func theStoredTextWithRuleIsTheEventEncodedWithRule() throws {
        // The dispatcher's requests carry the stored text: `rule` is spliced into it, and
        // the bytes are those that encoding the event with its rule would give.
        for value in [event, SampleEvent.hostile, .object([:])] {
            let stored = value.compactBytes
            for rule in ["vip", "a \"quoted\" \u{2028} rule", nil] as [String?] {
                let request = DeliveryRequest(
                    deliveryID: 1, eventID: "e", storedText: stored, event: value, rule: rule, sink: "s")
                #expect(request.eventWithRuleBytes == request.eventWithRule.compactBytes)
                // Not parsed (a sink that sends only the text; stored events have no
                // `rule`): the same bytes, and the event still readable on demand.
                guard value["rule"] == nil else { continue }
                let unparsed = DeliveryRequest(deliveryID: 1, eventID: "e", storedEventText: stored, rule: rule, sink: "s")
                #expect(unparsed.eventWithRuleBytes == request.eventWithRuleBytes)
                #expect(unparsed.event == value)
            }
        }
        #expect(DeliveryRequest.isOneObjectLine(Array(#"{"id":"e"}"#.utf8)))
        for text in ["", "{", "[1]", "{\n\"id\": \"e\"\n}", "{\"id\":\"e\"} "] {
            #expect(!DeliveryRequest.isOneObjectLine(Array(text.utf8)), "\(text)")
        }
        // A digest carries its own `rule`: replaced in place, as encoding does.
        let digest = json(#"{"id":"d","type":"digest","rule":"old","count":0,"events":[]}"#)
        let digestRequest = DeliveryRequest(
            deliveryID: 1, eventID: "d", storedText: digest.compactBytes, event: digest, rule: "vip", sink: "s")
        #expect(digestRequest.eventWithRuleBytes == Array(#"{"id":"d","type":"digest","rule":"vip","count":0,"events":[]}"#.utf8))
        // Stored text with line breaks between tokens still gives one line.
        let spread = Array("{\n\"id\": \"e\"\r\n}".utf8)
        let spreadRequest = DeliveryRequest(
            deliveryID: 1, eventID: "e", storedText: spread, event: try JSONValue.parse(spread), rule: "vip", sink: "s")
        #expect(spreadRequest.eventWithRuleBytes == Array(#"{"id":"e","rule":"vip"}"#.utf8))
    }

    @Test func slackEscapesExactlyOnce() throws {
        let text = "a & b < c > d &amp; <!channel>"
        let parsed = try JSONValue.parse(DeliveryFormat.slack.body(event: event, text: text))
        #expect(parsed == json(#"{"text":"a &amp; b &lt; c &gt; d &amp;amp; &lt;!channel&gt;"}"#))
        // A "<" carrying a combining mark is still escaped.
        #expect(DeliveryFormat.slackEscaped("<\u{301}!here>") == "&lt;\u{301}!here&gt;")
    }

    @Test func discordIsCutTo2000WithoutSplittingCharacters() throws {
        let long = String(repeating: "a", count: 2500)
        let parsed = try JSONValue.parse(DeliveryFormat.discord.body(event: event, text: long))
        let content = try #require(parsed["content"]?.stringValue)
        #expect(content.count == 2000)
        #expect(content.hasSuffix("…"))
        #expect(parsed["allowed_mentions"] == json(#"{"parse":[]}"#))

        let family = "👨‍👩‍👧‍👦" // 7 scalars, 11 UTF-16 units, 1 character
        let emoji = String(repeating: family, count: 400)
        let cut = try #require(try JSONValue.parse(DeliveryFormat.discord.body(event: event, text: emoji))["content"]?.stringValue)
        #expect(cut.utf16.count <= 2000)
        #expect(cut.dropLast().allSatisfy { $0 == Character(family) }, "whole characters only")
        #expect(cut.hasSuffix("…"))

        let short = "short @everyone"
        #expect(try JSONValue.parse(DeliveryFormat.discord.body(event: event, text: short))["content"] == .string(short))
    }

    @Test func teamsIsAnAdaptiveCard() throws {
        let parsed = try JSONValue.parse(DeliveryFormat.teams.body(event: event, text: "Hello <b>"))
        #expect(parsed["type"] == .string("message"))
        let attachment = try #require(parsed["attachments"]?.arrayValue?.first)
        #expect(attachment["contentType"] == .string("application/vnd.microsoft.card.adaptive"))
        let card = try #require(attachment["content"])
        #expect(card["type"] == .string("AdaptiveCard"))
        #expect(card["version"] == .string("1.4"))
        #expect(card["$schema"] == .string("http://adaptivecards.io/schemas/adaptive-card.json"))
        #expect(card["body"] == json(#"[{"type":"TextBlock","text":"Hello <b>","wrap":true}]"#))
    }

    @Test func everyBodyIsValidJSONWhateverTheName() throws {
        for name in hostileNames {
            let hostile = sampleEvent(name: .string(name))
            let request = DeliveryRequest(eventID: "e", event: hostile, rule: "r", sink: "s")
            let texts = [DeliverySummary.text(for: request.eventWithRule), try DeliveryTemplate("{{chat.name}}").render(request.eventWithRule)]
            for format in DeliveryFormat.allCases {
                for text in texts {
                    let body = format.body(event: request.eventWithRule, text: text)
                    let parsed = try JSONValue.parse(body)
                    // Foundation's parser agrees it is JSON.
                    _ = try JSONSerialization.jsonObject(with: Data(body))
                    if format == .json { #expect(parsed["chat"]?["name"] == .string(name)) }
                    if format == .teams {
                        #expect(parsed["attachments"]?.arrayValue?.first?["content"]?["body"]?.arrayValue?.first?["text"] == .string(text))
                    }
                    #expect(!body.contains(0x0A), "one line")
                }
            }
        }
    }
}

@Suite("Delivery: Standard Webhooks signing")
struct DeliverySigningTests {
    @Test func matchesTheSpecificationsExample() {
        let signer = WebhookSigner(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let signature = signer.signature(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test func aSecretWithoutPrefixIsUsedAsBytes() {
        let body = Array("{}".utf8)
        let signature = WebhookSigner(secret: "plain secret").signature(id: "a", timestamp: 1, body: body)
        let expected = HMAC<SHA256>.authenticationCode(for: Data("a.1.{}".utf8), using: SymmetricKey(data: Data("plain secret".utf8)))
        #expect(signature == "v1," + Data(expected).base64EncodedString())
        #expect(WebhookSigner(secret: "other").signature(id: "a", timestamp: 1, body: body) != signature)
    }

    @Test func severalSecretsGiveOneSignatureEachForRotation() {
        let body = Array(#"{"test": 2432232314}"#.utf8)
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let rotating = WebhookSigner(secrets: ["new secret", old])
        let signature = rotating.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body)
        let parts = signature.split(separator: " ").map(String.init)
        #expect(parts.count == 2)
        #expect(parts[0] == WebhookSigner(secret: "new secret").signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body))
        #expect(parts[1] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "a receiver on the old secret still verifies")
    }

    @Test func messageIDIsStablePerRow() {
        #expect(WebhookSigner.messageID(eventID: "E", rule: nil, sink: "stdout") == "E")
        #expect(WebhookSigner.messageID(eventID: "E", rule: "vip", sink: "slack") == "E.vip.slack")
        #expect(WebhookSigner.messageID(eventID: "E", rule: "vip", sink: "teams") != WebhookSigner.messageID(eventID: "E", rule: "vip", sink: "slack"))
    }

    @Test func headersCarryIdTimestampAndSignature() {
        let date = Date(timeIntervalSince1970: 1_614_265_330.9)
        let unsigned = WebhookSigner.headers(id: "E", timestamp: date, body: [], signer: nil)
        #expect(unsigned.map(\.name) == ["webhook-id", "webhook-timestamp"])
        #expect(unsigned[1].value == "1614265330")
        let signed = WebhookSigner.headers(id: "E", timestamp: date, body: [], signer: WebhookSigner(secret: "s"))
        #expect(signed.map(\.name) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(signed[2].value.hasPrefix("v1,"))
    }
}

@Suite("Delivery: text limits")
struct DeliveryTextLimitTests {
    @Test func utf8PrefixKeepsWholeCharacters() {
        #expect(TextLimit.prefix("héllo", maxUTF8Bytes: 2) == "h")
        #expect(TextLimit.prefix("héllo", maxUTF8Bytes: 3) == "hé")
        #expect(TextLimit.prefix("abc", maxUTF8Bytes: 10) == "abc")
        #expect(TextLimit.prefix("👍🏽x", maxUTF8Bytes: 7) == "", "a character is never split")
    }

    @Test func truncationAddsAnEllipsisWithinTheLimit() {
        #expect(TextLimit.truncated("abcdef", maxUTF16Units: 4) == "abc…")
        #expect(TextLimit.truncated("abcd", maxUTF16Units: 4) == "abcd")
        #expect(TextLimit.truncated("😀😀😀", maxUTF16Units: 4) == "😀…")
    }
}
