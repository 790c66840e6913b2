import Foundation

/// An instant: whole seconds since 1970-01-01T00:00:00Z plus nanoseconds.
///
/// CEL timestamps run from `0001-01-01T00:00:00Z` to `9999-12-31T23:59:59.999999999Z`
/// (proleptic Gregorian calendar, no leap seconds); arithmetic that leaves that range is
/// an evaluation error. Make one from a `Date` or from RFC 3339 text:
///
/// ```swift
/// let now = CELTimestamp(date: Date())
/// let t = CELTimestamp(rfc3339: "2026-03-29T01:30:00Z")!   // t.seconds == 1774747800
/// t.rfc3339                                                  // "2026-03-29T01:30:00Z"
/// ```
public struct CELTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since the Unix epoch (negative before 1970).
    public let seconds: Int64
    /// Nanoseconds into the second, `0..<1_000_000_000`.
    public let nanos: Int32

    /// Seconds of `0001-01-01T00:00:00Z` and `9999-12-31T23:59:59Z`.
    public static let minimumSeconds: Int64 = -62_135_596_800
    public static let maximumSeconds: Int64 = 253_402_300_799

    /// `seconds` plus `nanos` (any value; it is carried into the seconds).
    public init(seconds: Int64, nanos: Int32 = 0) {
        let carry = Int64(nanos).floorDivided(by: 1_000_000_000)
        self.seconds = seconds &+ carry
        self.nanos = Int32(Int64(nanos) - carry * 1_000_000_000)
    }

    /// The instant of `date`, to the microsecond (a `Date` holds no finer precision
    /// reliably).
    public init(date: Date) {
        // Clamped so that no Date, however odd, can trap the conversion; anything this far
        // out is beyond CEL's range anyway.
        let raw = date.timeIntervalSince1970
        let interval = raw.isNaN ? 0 : min(max(raw, -1e15), 1e15)
        let whole = interval.rounded(.down)
        let micros = ((interval - whole) * 1_000_000).rounded()
        self.init(seconds: Int64(whole), nanos: Int32(micros) * 1000)
    }

    /// Parses RFC 3339 text (`2026-03-29T01:30:00Z`, `…T01:30:00.5+02:00`); `nil` when it
    /// is malformed. The result may be outside CEL's range: check ``isInRange``.
    public init?(rfc3339 text: String) {
        guard let parsed = CELTimeParsing.timestamp(text) else { return nil }
        self = parsed
    }

    /// Whether the instant lies within CEL's years 0001–9999.
    public var isInRange: Bool { seconds >= Self.minimumSeconds && seconds <= Self.maximumSeconds }

    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9) }

    /// RFC 3339 in UTC, with 0, 3, 6 or 9 fractional digits as needed:
    /// `2009-02-13T23:31:30Z`, `2009-02-13T23:31:30.500Z`.
    public var rfc3339: String {
        let days = seconds.floorDivided(by: 86_400)
        let secondOfDay = seconds - days * 86_400
        let civil = CELCalendar.civil(fromDays: days)
        var out = CELCalendar.pad(civil.year, 4) + "-" + CELCalendar.pad(Int64(civil.month), 2) + "-"
            + CELCalendar.pad(Int64(civil.day), 2) + "T" + CELCalendar.pad(secondOfDay / 3600, 2) + ":"
            + CELCalendar.pad(secondOfDay % 3600 / 60, 2) + ":" + CELCalendar.pad(secondOfDay % 60, 2)
        if nanos != 0 { out += "." + CELCalendar.fraction(nanos) }
        return out + "Z"
    }

    public var description: String { rfc3339 }

    public static func < (lhs: CELTimestamp, rhs: CELTimestamp) -> Bool {
        (lhs.seconds, lhs.nanos) < (rhs.seconds, rhs.nanos)
    }
}

/// A signed length of time: seconds plus nanoseconds.
///
/// CEL durations hold up to about ±10,000 years (±315,576,000,000 s, as
/// `google.protobuf.Duration`). Sums and differences of durations, and differences of
/// timestamps, must also fit in 64-bit nanoseconds (about ±292 years), as in cel-cpp and
/// cel-go. Text is Go's duration syntax:
///
/// ```swift
/// let d = CELDuration("1h30m")!     // d.seconds == 5400
/// d.description                     // "5400s"
/// CELDuration("-1.5s")!.description // "-1.500s"
/// ```
public struct CELDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Whole seconds, rounded toward negative infinity (`-1.5s` is `-2` seconds plus
    /// `500_000_000` nanos).
    public let seconds: Int64
    /// Nanoseconds added to `seconds`, `0..<1_000_000_000`.
    public let nanos: Int32

    /// The largest magnitude, in whole seconds, of a CEL duration.
    public static let maximumSeconds: Int64 = 315_576_000_000

    /// `seconds` plus `nanos` (any value; it is carried into the seconds).
    public init(seconds: Int64, nanos: Int32 = 0) {
        let carry = Int64(nanos).floorDivided(by: 1_000_000_000)
        self.seconds = seconds &+ carry
        self.nanos = Int32(Int64(nanos) - carry * 1_000_000_000)
    }

    /// A duration of `nanoseconds`.
    public init(nanoseconds: Int64) {
        self.init(seconds: nanoseconds.floorDivided(by: 1_000_000_000),
                  nanos: Int32(nanoseconds - nanoseconds.floorDivided(by: 1_000_000_000) * 1_000_000_000))
    }

    /// Parses Go duration text: an optional sign, then numbers with units `h`, `m`, `s`,
    /// `ms`, `us` (or `µs`), `ns` (`"1h30m"`, `"1.5s"`, `"-300ms"`, `"0"`). `nil` when
    /// malformed; the result may be outside CEL's range: check ``isInRange``.
    public init?(_ text: String) {
        guard let parsed = CELTimeParsing.duration(text) else { return nil }
        self = parsed
    }

    /// Whether the duration is within CEL's ±315,576,000,000.999999999 s.
    public var isInRange: Bool {
        seconds >= -Self.maximumSeconds - 1 && (seconds > -Self.maximumSeconds - 1 || nanos > 0)
            && seconds <= Self.maximumSeconds
    }

    /// The length in nanoseconds, or `nil` when it does not fit in 64 bits.
    public var totalNanoseconds: Int64? {
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        let (total, overflow2) = scaled.addingReportingOverflow(Int64(nanos))
        return overflow2 ? nil : total
    }

    /// Whether the duration is shorter than zero.
    var isNegative: Bool { seconds < 0 }

    /// The magnitude as (seconds, nanos) with the sign apart: `-1.5s` is `(true, 1, 500000000)`.
    var signedParts: (negative: Bool, seconds: UInt64, nanos: Int32) {
        if seconds >= 0 { return (false, UInt64(seconds), nanos) }
        if nanos == 0 { return (true, seconds.magnitude, 0) }
        return (true, (seconds + 1).magnitude, 1_000_000_000 - nanos)
    }

    /// Seconds with 0, 3, 6 or 9 fractional digits and an `s`: `"3600s"`, `"-1.500s"`,
    /// as `string(duration)` prints it.
    public var description: String {
        let parts = signedParts
        var out = parts.negative ? "-" : ""
        out += String(parts.seconds)
        if parts.nanos != 0 { out += "." + CELCalendar.fraction(parts.nanos) }
        return out + "s"
    }

    public static func < (lhs: CELDuration, rhs: CELDuration) -> Bool {
        (lhs.seconds, lhs.nanos) < (rhs.seconds, rhs.nanos)
    }
}

extension Int64 {
    /// Division rounding toward negative infinity.
    @inline(__always)
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

// MARK: - Arithmetic (range-checked, as cel-cpp)

enum CELTimeArithmetic {
    static func add(_ t: CELTimestamp, _ d: CELDuration) -> CELTimestamp? {
        let (secondsSum, overflow) = t.seconds.addingReportingOverflow(d.seconds)
        guard !overflow else { return nil }
        let result = CELTimestamp(seconds: secondsSum, nanos: t.nanos + d.nanos)
        return result.isInRange ? result : nil
    }

    static func subtract(_ t: CELTimestamp, _ d: CELDuration) -> CELTimestamp? {
        guard let negated = negate(d) else { return nil }
        return add(t, negated)
    }

    /// `t1 - t2`, which must fit in 64-bit nanoseconds.
    static func difference(_ t1: CELTimestamp, _ t2: CELTimestamp) -> CELDuration? {
        let (seconds, overflow) = t1.seconds.subtractingReportingOverflow(t2.seconds)
        guard !overflow else { return nil }
        let (scaled, overflow2) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow2 else { return nil }
        let (total, overflow3) = scaled.addingReportingOverflow(Int64(t1.nanos) - Int64(t2.nanos))
        guard !overflow3 else { return nil }
        return CELDuration(nanoseconds: total)
    }

    static func add(_ a: CELDuration, _ b: CELDuration) -> CELDuration? {
        guard let x = a.totalNanoseconds, let y = b.totalNanoseconds else { return nil }
        let (sum, overflow) = x.addingReportingOverflow(y)
        return overflow ? nil : CELDuration(nanoseconds: sum)
    }

    static func subtract(_ a: CELDuration, _ b: CELDuration) -> CELDuration? {
        guard let x = a.totalNanoseconds, let y = b.totalNanoseconds else { return nil }
        let (difference, overflow) = x.subtractingReportingOverflow(y)
        return overflow ? nil : CELDuration(nanoseconds: difference)
    }

    static func negate(_ d: CELDuration) -> CELDuration? {
        let (negatedSeconds, overflow) = Int64(0).subtractingReportingOverflow(d.seconds)
        guard !overflow else { return nil }
        return CELDuration(seconds: negatedSeconds, nanos: -d.nanos)
    }
}

// MARK: - Calendar

/// Proleptic Gregorian calendar arithmetic on days since 1970-01-01 (Howard Hinnant's
/// civil-date algorithms), exact for every CEL year.
enum CELCalendar {
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * shiftedMonth + 2) / 5 + 1)
        let month = Int(shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9)
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func days(fromYear year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func isLeapYear(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(_ year: Int64, _ month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value.magnitude)
        return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// Fractional-second digits in groups of three: `500` for 0.5 s, `000001` for 1 µs.
    static func fraction(_ nanos: Int32) -> String {
        if nanos % 1_000_000 == 0 { return pad(Int64(nanos / 1_000_000), 3) }
        if nanos % 1000 == 0 { return pad(Int64(nanos / 1000), 6) }
        return pad(Int64(nanos), 9)
    }
}

// MARK: - Time zones and accessors

/// A time zone argument of the timestamp accessors: a tz database name (case-sensitive,
/// e.g. `Europe/Paris`) or a fixed offset `[+-]HH:MM`.
struct CELTimeZone: Sendable {
    private enum Kind: Sendable {
        case fixed(Int64)
        case named(TimeZone)
    }

    private let kind: Kind

    static let utc = CELTimeZone(kind: .fixed(0))

    private init(kind: Kind) { self.kind = kind }

    /// The zone `name` stands for, or `nil` when it is neither a known tz database name
    /// nor an offset. Names are checked to look like tz names before any lookup, so
    /// hostile text never reaches the zone database as a path.
    init?(name: String) {
        if let offset = Self.fixedOffset(name) {
            kind = .fixed(offset)
            return
        }
        if name == "UTC" || name == "Etc/UTC" {
            kind = .fixed(0)
            return
        }
        guard Self.looksLikeZoneName(name), let zone = TimeZone(identifier: name), zone.identifier == name else {
            return nil
        }
        kind = .named(zone)
    }

    /// Seconds to add to UTC to get local time at `seconds` since the epoch.
    func offset(at seconds: Int64) -> Int64 {
        switch kind {
        case .fixed(let offset): return offset
        case .named(let zone): return Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds))))
        }
    }

    /// `[+-]HH:MM` (sign optional, hours up to 23) as seconds.
    private static func fixedOffset(_ text: String) -> Int64? {
        var scalars = Array(text.unicodeScalars)
        var negative = false
        if let first = scalars.first, first == "+" || first == "-" {
            negative = first == "-"
            scalars.removeFirst()
        }
        guard scalars.count == 5, scalars[2] == ":",
            let hours = twoDigits(scalars[0], scalars[1]), let minutes = twoDigits(scalars[3], scalars[4]),
            hours <= 23, minutes <= 59
        else { return nil }
        let seconds = Int64(hours * 3600 + minutes * 60)
        return negative ? -seconds : seconds
    }

    private static func twoDigits(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Int? {
        guard ("0"..."9").contains(a), ("0"..."9").contains(b) else { return nil }
        return Int(a.value - 48) * 10 + Int(b.value - 48)
    }

    private static func looksLikeZoneName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64 else { return false }
        for component in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard !component.isEmpty, component != ".", component != ".." else { return false }
            for byte in component.utf8 {
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "+"):
                    continue
                default:
                    return false
                }
            }
        }
        return true
    }
}

/// The timestamp accessors (`getHours()` …) and, where they exist, the duration ones.
enum CELTimeAccessor: String, Sendable, CaseIterable {
    case fullYear = "getFullYear"
    case month = "getMonth"
    case dayOfYear = "getDayOfYear"
    case dayOfMonth = "getDayOfMonth"
    case date = "getDate"
    case dayOfWeek = "getDayOfWeek"
    case hours = "getHours"
    case minutes = "getMinutes"
    case seconds = "getSeconds"
    case milliseconds = "getMilliseconds"

    /// The field of `timestamp` seen in `zone`, counted as the CEL spec says.
    func value(of timestamp: CELTimestamp, in zone: CELTimeZone) -> Int64 {
        let local = timestamp.seconds + zone.offset(at: timestamp.seconds)
        let days = local.floorDivided(by: 86_400)
        let secondOfDay = local - days * 86_400
        switch self {
        case .hours: return secondOfDay / 3600
        case .minutes: return secondOfDay % 3600 / 60
        case .seconds: return secondOfDay % 60
        case .milliseconds: return Int64(timestamp.nanos / 1_000_000)
        case .dayOfWeek:
            let fromSunday = days + 4  // 1970-01-01 was a Thursday
            return fromSunday - fromSunday.floorDivided(by: 7) * 7
        default: break
        }
        let civil = CELCalendar.civil(fromDays: days)
        switch self {
        case .fullYear: return civil.year
        case .month: return Int64(civil.month - 1)
        case .dayOfMonth: return Int64(civil.day - 1)
        case .date: return Int64(civil.day)
        case .dayOfYear: return days - CELCalendar.days(fromYear: civil.year, month: 1, day: 1)
        default: return 0
        }
    }

    /// The field of a duration, as cel-cpp: whole hours, minutes or seconds, truncated
    /// toward zero; milliseconds within the second. `nil` for the date accessors.
    func value(of duration: CELDuration) -> Int64? {
        let parts = duration.signedParts
        let sign: Int64 = parts.negative ? -1 : 1
        switch self {
        case .hours: return sign * Int64(parts.seconds / 3600)
        case .minutes: return sign * Int64(parts.seconds / 60)
        case .seconds: return sign * Int64(parts.seconds)
        case .milliseconds: return sign * Int64(parts.nanos / 1_000_000)
        default: return nil
        }
    }
}

// MARK: - Parsing

enum CELTimeParsing {
    /// RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T` and `Z` in either case.
    static func timestamp(_ text: String) -> CELTimestamp? {
        let s = Array(text.utf8)
        var i = 0
        func digits(_ count: Int) -> Int64? {
            guard i + count <= s.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<count {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(s[i]) else { return nil }
                value = value * 10 + Int64(s[i] - UInt8(ascii: "0"))
                i += 1
            }
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard i < s.count, s[i] == byte else { return false }
            i += 1
            return true
        }
        // The year: four or more digits (so that year 10000 parses and is then out of range).
        var year: Int64 = 0
        let yearStart = i
        while i < s.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(s[i]), i - yearStart < 12 {
            year = year * 10 + Int64(s[i] - UInt8(ascii: "0"))
            i += 1
        }
        guard i - yearStart >= 4, expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
            let day = digits(2), i < s.count, s[i] == UInt8(ascii: "T") || s[i] == UInt8(ascii: "t")
        else { return nil }
        i += 1
        guard let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), expect(UInt8(ascii: ":")),
            let second = digits(2)
        else { return nil }
        var nanos: Int64 = 0
        if i < s.count, s[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < s.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(s[i]) {
                if count < 9 { nanos = nanos * 10 + Int64(s[i] - UInt8(ascii: "0")) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 9) { nanos *= 10 }
        }
        var offset: Int64 = 0
        guard i < s.count else { return nil }
        if s[i] == UInt8(ascii: "Z") || s[i] == UInt8(ascii: "z") {
            i += 1
        } else if s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") {
            let negative = s[i] == UInt8(ascii: "-")
            i += 1
            guard let offsetHours = digits(2), expect(UInt8(ascii: ":")), let offsetMinutes = digits(2),
                offsetHours <= 23, offsetMinutes <= 59
            else { return nil }
            offset = (offsetHours * 3600 + offsetMinutes * 60) * (negative ? -1 : 1)
        } else {
            return nil
        }
        guard i == s.count, (1...12).contains(month), day >= 1, day <= Int64(CELCalendar.daysInMonth(year, Int(month))),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        let days = CELCalendar.days(fromYear: year, month: Int(month), day: Int(day))
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return CELTimestamp(seconds: seconds, nanos: Int32(nanos))
    }

    /// Go duration syntax: `[-+]?([0-9]*(\.[0-9]*)?(h|m|s|ms|us|µs|μs|ns))+` or `0`.
    static func duration(_ text: String) -> CELDuration? {
        var s = Array(text.unicodeScalars)
        var negative = false
        if let first = s.first, first == "-" || first == "+" {
            negative = first == "-"
            s.removeFirst()
        }
        if s == ["0"] { return CELDuration(seconds: 0) }
        guard !s.isEmpty else { return nil }
        var totalSeconds: Int64 = 0
        var totalNanos: Int64 = 0
        var i = 0
        while i < s.count {
            var whole: Int64 = 0
            var sawDigits = false
            while i < s.count, ("0"..."9").contains(s[i]) {
                let (scaled, o1) = whole.multipliedReportingOverflow(by: 10)
                let (next, o2) = scaled.addingReportingOverflow(Int64(s[i].value - 48))
                guard !o1, !o2 else { return nil }
                whole = next
                sawDigits = true
                i += 1
            }
            var fractionNumerator: Int64 = 0
            var fractionDenominator: Int64 = 1
            if i < s.count, s[i] == "." {
                i += 1
                while i < s.count, ("0"..."9").contains(s[i]) {
                    // Digits past the 18th cannot change a nanosecond count.
                    if fractionDenominator < 1_000_000_000_000_000_000 {
                        fractionNumerator = fractionNumerator * 10 + Int64(s[i].value - 48)
                        fractionDenominator *= 10
                    }
                    sawDigits = true
                    i += 1
                }
            }
            guard sawDigits else { return nil }
            let unitStart = i
            while i < s.count, !("0"..."9").contains(s[i]), s[i] != "." { i += 1 }
            let unit = String(String.UnicodeScalarView(s[unitStart..<i]))
            let unitNanos: Int64
            switch unit {
            case "ns": unitNanos = 1
            case "us", "\u{B5}s", "\u{3BC}s": unitNanos = 1000
            case "ms": unitNanos = 1_000_000
            case "s": unitNanos = 1_000_000_000
            case "m": unitNanos = 60_000_000_000
            case "h": unitNanos = 3_600_000_000_000
            default: return nil
            }
            // The whole part, split into seconds and nanoseconds without overflow.
            if unitNanos >= 1_000_000_000 {
                let (secondsPart, overflow) = whole.multipliedReportingOverflow(by: unitNanos / 1_000_000_000)
                guard !overflow else { return nil }
                let (sum, overflow2) = totalSeconds.addingReportingOverflow(secondsPart)
                guard !overflow2 else { return nil }
                totalSeconds = sum
            } else {
                let perSecond = 1_000_000_000 / unitNanos
                let (sum, overflow) = totalSeconds.addingReportingOverflow(whole / perSecond)
                guard !overflow else { return nil }
                totalSeconds = sum
                totalNanos += (whole % perSecond) * unitNanos
            }
            // The fraction: numerator × unit / denominator, truncated to nanoseconds.
            if fractionNumerator != 0 {
                let product = fractionNumerator.multipliedFullWidth(by: unitNanos)
                let (quotient, _) = fractionDenominator.dividingFullWidth(product)
                totalNanos += quotient
            }
            totalSeconds += totalNanos / 1_000_000_000
            totalNanos %= 1_000_000_000
        }
        var result = CELDuration(seconds: totalSeconds, nanos: Int32(totalNanos))
        if negative {
            guard let negated = CELTimeArithmetic.negate(result) else { return nil }
            result = negated
        }
        return result
    }
}
