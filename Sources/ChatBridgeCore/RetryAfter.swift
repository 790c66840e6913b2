import Foundation
/// The HTTP `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
package enum RetryAfter {
    /// The time a `Retry-After` header names, or `nil` when it is not one.
    ///
    /// Accepts delay-seconds (`120`) and the three HTTP-date forms: IMF-fixdate
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
    /// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
    ///
    /// ```swift
    /// RetryAfter.parse("120", now: now)                             // now + 120 s
    /// RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now: now)   // that moment
    /// ```
    package static func parse(_ header: String, now: Date) -> Date? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // Absurdly long numbers are clamped rather than rejected: the receiver wants a long pause.
            let seconds = Double(text.prefix(12)).map { min($0, 1e11) } ?? 0
            return now.addingTimeInterval(seconds)
        }
        return parseHTTPDate(text)
    }

    /// The wait a `Retry-After` header asks for from `now`: 0 for a date in the past,
    /// at most `atMost`; `nil` when it is not a `Retry-After` value.
    package static func delay(_ header: String, now: Date, atMost limit: Duration) -> Duration? {
        guard let date = parse(header, now: now) else { return nil }
        return min(limit, .seconds(exactly: date.timeIntervalSince(now)))
    }

    /// Parses an HTTP-date (any of its three forms) as UTC.
    package static func parseHTTPDate(_ text: String) -> Date? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT  -> [Sun, 06, Nov, 1994, 08:49:37, GMT]
        if tokens.count == 5 || tokens.count == 6, text.contains(",") {
            if tokens.count == 6, tokens[5] == "GMT", let day = Int(tokens[1]), let month = month(tokens[2]),
               let year = Int(tokens[3]), tokens[3].count == 4
            {
                return date(year: year, month: month, day: day, time: tokens[4])
            }
            // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT -> [Sunday, 06-Nov-94, 08:49:37, GMT]
        }
        if tokens.count == 4, tokens[3] == "GMT" {
            let parts = tokens[1].split(separator: "-").map(String.init)
            if parts.count == 3, let day = Int(parts[0]), let month = month(parts[1]), let shortYear = Int(parts[2]) {
                // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
                let year = parts[2].count == 2 ? (shortYear < 70 ? 2000 + shortYear : 1900 + shortYear) : shortYear
                return date(year: year, month: month, day: day, time: tokens[2])
            }
        }
        // asctime: Sun Nov  6 08:49:37 1994 -> [Sun, Nov, 6, 08:49:37, 1994]
        if tokens.count == 5, !text.contains(","), let month = month(tokens[1]), let day = Int(tokens[2]),
           let year = Int(tokens[4])
        {
            return date(year: year, month: month, day: day, time: tokens[3])
        }
        return nil
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    private static func month(_ name: String) -> Int? {
        months.firstIndex(of: name.lowercased()).map { $0 + 1 }
    }

    private static func date(year: Int, month: Int, day: Int, time: String) -> Date? {
        let parts = time.split(separator: ":").map { Int($0) }
        guard parts.count == 3, let hour = parts[0], let minute = parts[1], let second = parts[2],
              (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let days = Timestamp.daysFromCivil(year: year, month: month, day: day)
        return Date(timeIntervalSince1970: Double(days * 86400 + hour * 3600 + minute * 60 + second))
    }
}
