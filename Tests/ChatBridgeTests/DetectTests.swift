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

private func object(_ text: String) -> JSONObject {
    try! JSONValue.parse(text).objectValue!
}

private let now = Date(timeIntervalSince1970: 1_764_000_000)  // 2025-11-24T16:00:00Z

@Suite("Chat diff: kinds and changes (events.md)")
struct ChatDiffTests {
    func diff(_ before: String, _ after: String) -> ChatDiff {
        ChatDiff(previous: object(before), current: object(after), now: now)
    }

    @Test func unreadKinds() {
        #expect(diff(#"{"unread_count":0}"#, #"{"unread_count":3}"#).kinds == [.unreadIncreased])
        #expect(diff(#"{"unread_count":5}"#, #"{"unread_count":2}"#).kinds == [.unreadDecreased])
        #expect(diff(#"{"unread_count":5}"#, #"{"unread_count":0}"#).kinds == [.unreadCleared])
        #expect(diff(#"{"unread_count":1}"#, #"{"unread_count":1}"#).kinds == [])
    }

    @Test func fieldsInAnotherOrderAreMatchedByName() {
        let changes = diff(#"{"a":1,"b":2,"c":3,"e":null}"#, #"{"c":3,"b":5,"d":1,"a":1}"#).changes
        #expect(changes == [
            FieldChange(field: "b", from: .int(2), to: .int(5)),
            FieldChange(field: "d", from: .null, to: .int(1)),
        ])
        let removed = diff(#"{"x":1,"a":1}"#, #"{"a":1}"#).changes
        #expect(removed == [FieldChange(field: "x", from: .int(1), to: .null)])
        #expect(diff(#"{"a":1,"b":[1,{"k":2}]}"#, #"{"b":[1,{"k":2}],"a":1}"#).isEmpty)
    }

    @Test func booleansAsNumbersOrBools() {
        #expect(diff(#"{"archived":0}"#, #"{"archived":1}"#).kinds == [.chatArchived])
        #expect(diff(#"{"archived":true}"#, #"{"archived":0}"#).kinds == [.chatUnarchived])
        #expect(diff(#"{"pinned":0}"#, #"{"pinned":true}"#).kinds == [.chatPinned])
        #expect(diff(#"{"pinned":1}"#, #"{"pinned":false}"#).kinds == [.chatUnpinned])
        // 1 <-> true is no change at all
        let same = diff(#"{"archived":1,"pinned":0}"#, #"{"archived":true,"pinned":false}"#)
        #expect(same.isEmpty)
        #expect(same.kinds.isEmpty)
    }

    @Test func changesListFromAndTo() {
        let d = diff(#"{"id":"c","unread_count":0,"archived":1}"#, #"{"id":"c","unread_count":3,"archived":0}"#)
        #expect(d.kinds == [.unreadIncreased, .chatUnarchived])
        #expect(d.changes == [
            FieldChange(field: "unread_count", from: .int(0), to: .int(3)),
            FieldChange(field: "archived", from: .int(1), to: .int(0)),
        ])
    }

    @Test func fieldsAppearingAndDisappearing() {
        let d = diff(#"{"subject":"Hi"}"#, #"{"content_type":"inmail"}"#)
        #expect(d.changes.contains(FieldChange(field: "content_type", from: .null, to: .string("inmail"))))
        #expect(d.changes.contains(FieldChange(field: "subject", from: .string("Hi"), to: .null)))
        #expect(d.kinds == [.chatUpdated])
    }

    @Test func muting() {
        let future = Int64(now.timeIntervalSince1970) + 3600
        let later = future + 3600
        #expect(diff(#"{"muted_until":null}"#, #"{"muted_until":-1}"#).kinds == [.chatMuted])
        #expect(diff(#"{"muted_until":-1}"#, #"{"muted_until":null}"#).kinds == [.chatUnmuted])
        #expect(diff(#"{"muted_until":\#(future)}"#, #"{"muted_until":\#(later)}"#).kinds == [.chatMuteChanged])
        // milliseconds
        #expect(diff(#"{"muted_until":null}"#, #"{"muted_until":\#(future * 1000)}"#).kinds == [.chatMuted])
        // ISO string
        #expect(diff(#"{"muted_until":null}"#, #"{"muted_until":"2030-01-01T00:00:00Z"}"#).kinds == [.chatMuted])
        // two past times: neither muted before nor after -> updated
        #expect(diff(#"{"muted_until":1600000000}"#, #"{"muted_until":1600000001}"#).kinds == [.chatUpdated])
        // muted until a past time, now unmuted explicitly: no mute change (was not muted)
        #expect(diff(#"{"muted_until":1600000000}"#, #"{"muted_until":null}"#).kinds == [.chatUpdated])
    }

    @Test func otherKinds() {
        #expect(diff(#"{"name":"A"}"#, #"{"name":"B"}"#).kinds == [.chatRenamed])
        #expect(diff(#"{"name":null}"#, #"{"name":"B"}"#).kinds == [.chatRenamed])
        #expect(diff(#"{"timestamp":"2025-11-24T10:00:00.000Z"}"#, #"{"timestamp":"2025-11-24T11:00:00.000Z"}"#).kinds
            == [.chatActivity])
        #expect(diff(#"{"timestamp":null}"#, #"{"timestamp":"2025-11-24T11:00:00.000Z"}"#).kinds == [.chatActivity])
        #expect(diff(#"{"timestamp":"2025-11-24T11:00:00.000Z"}"#, #"{"timestamp":"2025-11-24T10:00:00.000Z"}"#).kinds
            == [.chatUpdated])
        #expect(diff(#"{"read_only":0}"#, #"{"read_only":1}"#).kinds == [.chatReadOnlyChanged])
        #expect(diff(#"{"folder":["INBOX"]}"#, #"{"folder":["INBOX","ARCHIVE"]}"#).kinds == [.chatMoved])
        #expect(diff(#"{"subject":"a"}"#, #"{"subject":"b"}"#).kinds == [.chatUpdated])
    }

    @Test func kindsFollowTheTableOrder() {
        let d = diff(
            #"{"name":"A","unread_count":0,"pinned":0,"timestamp":null,"archived":1}"#,
            #"{"timestamp":"2025-11-24T11:00:00Z","archived":0,"pinned":1,"unread_count":2,"name":"B"}"#)
        #expect(d.kinds == [.unreadIncreased, .chatUnarchived, .chatPinned, .chatRenamed, .chatActivity])
    }

    @Test func integerAndDoubleAreTheSameNumber() {
        #expect(diff(#"{"unread_count":3}"#, #"{"unread_count":3.0}"#).isEmpty)
    }
}

@Suite("Snapshot honesty rules")
struct SnapshotRulesTests {
    @Test func removalNeedsTwoMissesInARow() {
        let first = SnapshotRules.planAbsences(knownCount: 10, absent: [("a", 0)], suspiciousStreak: 0)
        #expect(first.removals.isEmpty)
        #expect(first.stillMissing == ["a"])
        let second = SnapshotRules.planAbsences(knownCount: 10, absent: [("a", 1)], suspiciousStreak: 0)
        #expect(second.removals == ["a"])
    }

    @Test func massVanishIsHeldUntilConfirmed() {
        let absent = (0..<6).map { (id: "c\($0)", missing: 0) }
        var streak = 0
        for poll in 1...2 {
            let plan = SnapshotRules.planAbsences(knownCount: 10, absent: absent, suspiciousStreak: streak)
            #expect(plan.suspicious, "poll \(poll)")
            #expect(plan.removals.isEmpty && plan.stillMissing.isEmpty, "poll \(poll) must not count absences")
            streak = plan.suspiciousStreak
        }
        let third = SnapshotRules.planAbsences(knownCount: 10, absent: absent, suspiciousStreak: streak)
        #expect(third.removals.count == 6)
        #expect(third.suspiciousStreak == 0)
    }

    @Test func halfIsNotMoreThanHalf() {
        let absent = (0..<5).map { (id: "c\($0)", missing: 1) }
        let plan = SnapshotRules.planAbsences(knownCount: 10, absent: absent, suspiciousStreak: 0)
        #expect(!plan.suspicious)
        #expect(plan.removals.count == 5)
    }

    @Test func backoffDoublesAndCapsAtTenIntervals() {
        let interval = Duration.seconds(30)
        #expect(SnapshotRules.backoff(interval: interval, consecutiveFailures: 0) == .seconds(30))
        #expect(SnapshotRules.backoff(interval: interval, consecutiveFailures: 1) == .seconds(60))
        #expect(SnapshotRules.backoff(interval: interval, consecutiveFailures: 2) == .seconds(120))
        #expect(SnapshotRules.backoff(interval: interval, consecutiveFailures: 3) == .seconds(240))
        #expect(SnapshotRules.backoff(interval: interval, consecutiveFailures: 4) == .seconds(300))
        #expect(SnapshotRules.backoff(interval: interval, consecutiveFailures: 50) == .seconds(300))
    }
}

@Suite("JSON values, timestamps, event ids")
struct SupportTests {
    @Test func keepsKeyOrderAndNumberKinds() throws {
        let text = #"{"z":1,"a":1.5,"m":[true,null,"x"],"n":{"k":-0.0}}"#
        let value = try JSONValue.parse(text)
        #expect(value["z"] == .int(1))
        #expect(value["a"] == .double(1.5))
        #expect(value.compactString == #"{"z":1,"a":1.5,"m":[true,null,"x"],"n":{"k":0.0}}"#
            || value.compactString == #"{"z":1,"a":1.5,"m":[true,null,"x"],"n":{"k":-0.0}}"#)
    }

    @Test func hostileStringsStayOnOneLine() throws {
        let value = try JSONValue.parse(#""line\nbreak \u2028 \"quote\" \\ \u0000 \ud800 tail""#)
        let line = value.compactString
        #expect(!line.contains("\n"))
        #expect(!line.contains("\u{2028}"))
        let back = try JSONValue.parse(line)
        #expect(back.stringValue?.contains("\u{FFFD}") == true)  // lone surrogate replaced, not fatal
    }

    @Test func stringsAreEscapedExactlyWhereNeeded() {
        let cases: [(String, String)] = [
            ("", #""""#),
            ("plain text", #""plain text""#),
            ("a\"b\\c", #""a\"b\\c""#),
            ("\n\r\t\u{0}\u{1F}\u{7F}", #""\n\r\t\u0000\u001f\u007f""#),
            ("x\u{2028}y\u{2029}z", #""x\u2028y\u2029z""#),
            // Other characters that start with E2 (… € ✓) and non-ASCII text stay as UTF-8.
            ("…€✓ Zoë 会話 😀", #""…€✓ Zoë 会話 😀""#),
            ("\u{2028}", #""\u2028""#),
            ("end\u{E2}", "\"end\u{E2}\""),
        ]
        for (text, expected) in cases {
            #expect(JSONValue.string(text).compactString == expected, "\(Array(text.utf8))")
        }
    }

    @Test func stringsMustBeUTF8WithOrWithoutEscapes() throws {
        // Raw bytes, with a string's text as plain bytes and after an escape (two paths).
        func parse(_ bytes: [UInt8]) throws -> JSONValue {
            try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        }
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), n = UInt8(ascii: "n")
        for bad: [UInt8] in [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF], [0x80]] {
            #expect(throws: JSONParseError.self) { try parse([quote] + bad + [quote]) }
            #expect(throws: JSONParseError.self) { try parse([quote, backslash, n] + bad + [quote]) }
        }
        let good = Array("Zoë 会話 😀".utf8)
        #expect(try parse([quote] + good + [quote]) == .string("Zoë 会話 😀"))
        #expect(try parse([quote, backslash, n] + good + [quote]) == .string("\nZoë 会話 😀"))
    }

    @Test func aDuplicateKeyKeepsItsLastValueInItsFirstPlace() throws {
        let value = try JSONValue.parse(#"{"id":"a","name":"x","ab":1,"cb":2,"name":"y","ab":3}"#)
        #expect(value.compactString == #"{"id":"a","name":"y","ab":3,"cb":2}"#)
    }

    /// Agrees with the standard library on every one- and two-byte sequence, on every
    /// three-byte sequence with a lead byte of E0...EF, and on random text.
    @Test func utf8ValidationAgreesWithTheStandardLibrary() {
        func agrees(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBytes(UTF8Validation.isValid) == (String(validating: bytes, as: UTF8.self) != nil)
        }
        var disagreements: [[UInt8]] = []
        for a in 0...255 {
            if !agrees([UInt8(a)]) { disagreements.append([UInt8(a)]) }
            for b in 0...255 where !agrees([UInt8(a), UInt8(b)]) { disagreements.append([UInt8(a), UInt8(b)]) }
        }
        for a in 0xE0...0xEF {
            for b in 0x70...0xC0 {
                for c in [0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF] where !agrees([UInt8(a), UInt8(b), UInt8(c)]) {
                    disagreements.append([UInt8(a), UInt8(b), UInt8(c)])
                }
            }
        }
        // Random text: mostly ASCII with some multi-byte characters, then one byte changed,
        // long enough to take the eight-bytes-at-a-time path.
        var random = SystemRandomNumberGenerator()
        let pieces = ["a", "bc", "é", "€", "😀", "会", "        "].map { Array($0.utf8) }
        for _ in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &random) { bytes += pieces.randomElement(using: &random)! }
            if !bytes.isEmpty, Bool.random(using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if !agrees(bytes) { disagreements.append(bytes) }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }

    @Test func rejectsMalformedJSON() {
        for text in ["{", "[1,]", #"{"a" 1}"#, "01", "nul", #""\x""#, "{} x", "1e999"] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONValue.parse(text) }
        }
    }

    @Test func timestampsRoundTrip() {
        let date = Timestamp.parseISO8601("2026-11-24T22:05:15.123Z")!
        #expect(Timestamp.iso8601(date) == "2026-11-24T22:05:15.123Z")
        #expect(Timestamp.parseISO8601("2026-11-24T23:05:15+01:00") == Timestamp.parseISO8601("2026-11-24T22:05:15Z"))
        #expect(Timestamp.parseISO8601("not a date") == nil)
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test func eventIDsAreUUIDv7AndIncreasing() {
        var generator = EventIDGenerator()
        let instant = Date()
        let ids = (0..<5000).map { _ in generator.next(now: instant) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.count == 36 && Array($0)[14] == "7" })
    }

    @Test func secretsNeverPrint() {
        let secret = Secret("sk_live_very_secret")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("sk_live"))
    }
}

@Suite("Snapshot index: what a poll has seen")
struct SnapshotIndexTests {
    @Test func observationsAbsencesAndReappearances() {
        var index = SnapshotIndex([
            "a": SnapshotEntry(fingerprint: 1, missing: 0),
            "b": SnapshotEntry(fingerprint: 2, missing: 1),
            "c": SnapshotEntry(fingerprint: 3, missing: 0),
        ])
        #expect(index.observe(id: "a", fingerprint: 1) == .unchanged)
        #expect(index.observe(id: "b", fingerprint: 9) == .changed)
        #expect(index.observe(id: "n", fingerprint: 5) == .new)
        #expect(index.observe(id: "n", fingerprint: 5) == .repeated)
        #expect(index.observe(id: "a", fingerprint: 1) == .repeated, "a chat listed twice counts once")
        #expect(index.absent().map(\.id) == ["c"])
        #expect(index.reappeared() == ["b"])
        #expect(index.observedCount == 3)

        index.resetObservations()
        #expect(index.absent().count == 3)
        index.updateMissing("c", reset: false)
        #expect(index["c"]?.missing == 1)
        index.set("c", nil)
        #expect(index.count == 2)
        #expect(ChatKey(id: "a") != ChatKey(id: "b"))
        #expect(ChatKey(id: "é") != ChatKey(id: "e\u{301}"), "ids are compared by their bytes")
    }
}
