import CEL
import Foundation
import Testing

@Suite("CEL timestamps and durations")
struct TimeTests {
    static func at(_ text: String) -> CELValue { .timestamp(CELTimestamp(rfc3339: text)!) }

    @Test func accessorsAcrossTheParisSpringDSTSwitch() throws {
        // 2026-03-29 is the last Sunday of March: Paris goes from CET (+01:00) to CEST (+02:00) at 01:00Z.
        let before: [String: CELValue] = ["t": Self.at("2026-03-29T00:30:00Z")]
        #expect(try value("t.getHours('Europe/Paris')", before) == 1)
        #expect(try value("t.getMinutes('Europe/Paris')", before) == 30)
        #expect(try value("t.getHours()", before) == 0)
        let after: [String: CELValue] = ["t": Self.at("2026-03-29T01:30:00Z")]
        #expect(try value("t.getHours('Europe/Paris')", after) == 3)
        #expect(try value("t.getHours('UTC')", after) == 1)
        #expect(try value("t.getHours(zone)", after.merging(["zone": "Europe/Paris"]) { a, _ in a }) == 3)
    }

    @Test func calendarFieldsCountAsTheSpecSays() throws {
        let sunday: [String: CELValue] = ["t": Self.at("2026-03-29T12:34:56.789Z")]
        #expect(try value("t.getFullYear()", sunday) == 2026)
        #expect(try value("t.getMonth()", sunday) == 2)         // March, from 0
        #expect(try value("t.getDayOfMonth()", sunday) == 28)  // from 0
        #expect(try value("t.getDate()", sunday) == 29)        // from 1
        #expect(try value("t.getDayOfWeek()", sunday) == 0)    // Sunday
        #expect(try value("t.getDayOfYear()", sunday) == 87)   // 31 + 28 + 28, from 0
        #expect(try value("t.getSeconds()", sunday) == 56)
        #expect(try value("t.getMilliseconds()", sunday) == 789)
        // Proleptic Gregorian: 0001-01-01 was a Monday; 1970-01-01 a Thursday; 2000 a leap year.
        #expect(try value("timestamp('0001-01-01T00:00:00Z').getDayOfWeek()") == 1)
        #expect(try value("timestamp(0).getDayOfWeek()") == 4)
        #expect(try value("timestamp('2000-12-31T00:00:00Z').getDayOfYear()") == 365)
        #expect(try value("timestamp('9999-12-31T23:59:59Z').getFullYear()") == 9999)
        #expect(try value("timestamp(-1).getFullYear()") == 1969)
    }

    @Test func fixedOffsetZones() throws {
        let t: [String: CELValue] = ["t": Self.at("2026-03-29T20:00:00Z")]
        #expect(try value("t.getHours('+05:30')", t) == 1)
        #expect(try value("t.getMinutes('+05:30')", t) == 30)
        #expect(try value("t.getDate('+05:30')", t) == 30)
        #expect(try value("t.getDayOfWeek('+05:30')", t) == 1)  // Monday there
        #expect(try value("t.getHours('-05:30')", t) == 14)
        #expect(try value("t.getMinutes('-05:30')", t) == 30)
        #expect(try value("t.getHours('Asia/Kolkata') == t.getHours('+05:30')", t) == true)
    }

    @Test func unknownDynamicZonesAreEvaluationErrors() throws {
        let variables: [String: CELValue] = ["t": .timestamp(CELTimestamp(seconds: 0)), "zone": "europe/paris"]
        #expect(try evaluationError("t.getHours(zone)", variables)?.message == #"unknown time zone "europe/paris""#)
        let hostile: [String: CELValue] = ["t": .timestamp(CELTimestamp(seconds: 0)), "zone": "../../../etc/passwd"]
        #expect(try evaluationError("t.getHours(zone)", hostile) != nil)
        #expect(try evaluationError("duration('1h').getHours('UTC')") != nil)
        #expect(try evaluationError("'2026'.getFullYear()")?.message
            == "no matching overload for 'getFullYear' applied to (string)")
    }

    @Test func durationAccessors() throws {
        #expect(try value("duration('3730.5s').getHours()") == 1)
        #expect(try value("duration('3730.5s').getMinutes()") == 62)
        #expect(try value("duration('3730.5s').getSeconds()") == 3730)
        #expect(try value("duration('3730.5s').getMilliseconds()") == 500)
        #expect(try value("duration('-1.5s').getSeconds()") == -1)
        #expect(try value("duration('-1.5s').getMilliseconds()") == -500)
    }

    @Test func parsingAndPrinting() throws {
        #expect(try value("string(duration('1h'))") == "3600s")
        #expect(try value("string(duration('1h30m15.25s'))") == "5415.250s")
        #expect(try value("string(duration('-1.5s'))") == "-1.500s")
        #expect(try value("string(duration('1us'))") == "0.000001s")
        #expect(try value("string(duration('0'))") == "0s")
        #expect(try value("duration('1.5h') == duration('90m')") == true)
        #expect(try value("duration('1µs') == duration('1000ns')") == true)
        #expect(try evaluationError("duration('1d')") != nil)
        #expect(try evaluationError("duration('')") != nil)
        #expect(try value("string(timestamp('2026-03-29T03:30:00.5+02:00'))") == "2026-03-29T01:30:00.500Z")
        #expect(try value("timestamp('2026-03-29t01:30:00z') == timestamp('2026-03-29T03:30:00+02:00')") == true)
        #expect(try value("int(timestamp('1969-12-31T23:59:59.5Z'))") == -1)
        #expect(try evaluationError("timestamp('2026-02-29T00:00:00Z')") != nil)  // not a leap year
        #expect(try evaluationError("timestamp('2026-03-29 01:30:00Z')") != nil)
        #expect(try evaluationError("timestamp('2026-03-29T01:30:00')") != nil)  // no zone
        #expect(CELDuration("1h30m")?.seconds == 5400)
        #expect(CELTimestamp(rfc3339: "2026-03-29T01:30:00Z")?.seconds == 1_774_747_800)
    }

    @Test func arithmeticAndRanges() throws {
        let now: [String: CELValue] = ["now": Self.at("2026-03-29T12:00:00Z"), "last": "2026-03-29T11:30:00Z"]
        #expect(try value("timestamp(last) > now - duration('1h')", now) == true)
        #expect(try value("now - timestamp(last)", now) == .duration(CELDuration(seconds: 1800)))
        #expect(try value("now + duration('-12h') < now", now) == true)
        #expect(try evaluationError("timestamp('9999-12-31T23:59:59Z') + duration('1s')")?.message
            == "timestamp out of range (years 0001 to 9999)")
        #expect(try evaluationError("timestamp(253402300800)") != nil)
        #expect(try evaluationError("duration('320000000000s')")?.message == "duration out of range")
        #expect(try evaluationError("now + 1", now) != nil)
        #expect(try evaluationError("now < duration('1s')", now) != nil)
    }

    @Test func valuesMadeOutsideCELAreRangeChecked() throws {
        let far: [String: CELValue] = [
            "t": .timestamp(CELTimestamp(seconds: .max)), "d": .duration(CELDuration(seconds: .min)),
        ]
        #expect(try evaluationError("t.getHours('Europe/Paris')", far)?.message == "timestamp out of range (years 0001 to 9999)")
        #expect(try evaluationError("d.getSeconds()", far)?.message == "duration out of range")
        #expect(try evaluationError("string(t)", far) != nil)
        #expect(try evaluationError("t + duration('1s')", far) != nil)
        #expect(try evaluationError("d + d", far) != nil)
        #expect(try value("t > timestamp(0)", far) == true)
        #expect(CELTimestamp(date: Date(timeIntervalSince1970: .nan)).seconds == 0)
        #expect(!CELTimestamp(date: Date(timeIntervalSince1970: .infinity)).isInRange)
        #expect(CELTimestamp(date: .distantFuture).isInRange)
    }

    @Test func dateConversionKeepsMicroseconds() throws {
        let date = Date(timeIntervalSince1970: 1_774_747_800.123456)
        let timestamp = CELTimestamp(date: date)
        #expect(timestamp.seconds == 1_774_747_800)
        #expect(timestamp.nanos == 123_456_000)
        #expect(abs(timestamp.date.timeIntervalSince(date)) < 1e-6)
        let before1970 = CELTimestamp(date: Date(timeIntervalSince1970: -0.25))
        #expect(before1970.seconds == -1 && before1970.nanos == 750_000_000)
        #expect(before1970.rfc3339 == "1969-12-31T23:59:59.750Z")
    }
}
