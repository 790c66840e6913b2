/// The duration syntax of configuration and rule files: `500ms`, `30s`, `5m`, `2h`,
/// `30d`, and sums of them written largest first or in any order, like `1h30m`.
///
/// A bare number is refused on purpose: `interval: 30` could mean seconds or
/// milliseconds, and guessing wrong either hammers the API or never polls.
///
/// ```swift
/// try ConfigDuration.parse("1h30m")   // .seconds(5400)
/// try ConfigDuration.parse("30")      // throws: "write 30s, not 30"
/// ConfigDuration.format(.seconds(90)) // "1m30s"
/// ```
package enum ConfigDuration {
    /// The units, longest suffix first so that `ms` is not read as `m` followed by junk.
    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
    ]

    /// Reads a duration such as `30s` or `1h30m`.
    ///
    /// - Throws: ``ConfigDurationError`` whose message says how to write it instead.
    package static func parse(_ text: String) throws(ConfigDurationError) -> Duration {
        let trimmed = text.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else {
            throw ConfigDurationError(message: "a duration is required, e.g. 30s")
        }
        if trimmed.allSatisfy(\.isASCIIDigit) {
            throw ConfigDurationError(message: "'\(trimmed)' has no unit: write \(trimmed)s, not \(trimmed) (units: ms, s, m, h, d)")
        }
        var total: Int64 = 0
        var rest = Substring(trimmed)
        while !rest.isEmpty {
            let digits = rest.prefix(while: \.isASCIIDigit)
            guard !digits.isEmpty else {
                throw invalid(trimmed)
            }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.suffix) }) else {
                throw invalid(trimmed)
            }
            rest = rest.dropFirst(unit.suffix.count)
            guard let amount = Int64(digits) else { throw tooLarge(trimmed) }
            let (product, productOverflow) = amount.multipliedReportingOverflow(by: unit.milliseconds)
            let (sum, sumOverflow) = total.addingReportingOverflow(product)
            guard !productOverflow, !sumOverflow, sum <= maximumMilliseconds else { throw tooLarge(trimmed) }
            total = sum
        }
        return .milliseconds(total)
    }

    /// Writes a duration in the same syntax, largest units first, dropping zero parts:
    /// `1h30m`, `500ms`, `0s`. Sub-millisecond parts are dropped.
    package static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var milliseconds = seconds * 1_000 + attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else { return milliseconds == 0 ? "0s" : "-" + format(.zero - duration) }
        var text = ""
        for unit in units.reversed() where milliseconds >= unit.milliseconds {
            text += "\(milliseconds / unit.milliseconds)\(unit.suffix)"
            milliseconds %= unit.milliseconds
        }
        return text
    }

    /// A hundred years: more is a typo, and it keeps arithmetic on deadlines far from overflow.
    private static let maximumMilliseconds: Int64 = 100 * 365 * 86_400_000

    private static func invalid(_ text: String) -> ConfigDurationError {
        ConfigDurationError(message: "'\(text)' is not a duration: write whole numbers with a unit (ms, s, m, h, d), e.g. 500ms, 30s, 5m, 1h30m, 30d")
    }

    private static func tooLarge(_ text: String) -> ConfigDurationError {
        ConfigDurationError(message: "'\(text)' is too long a duration (at most 100 years)")
    }
}

/// Why a text is not a duration, in words meant for the person who wrote it.
package struct ConfigDurationError: Error, Sendable, Hashable, CustomStringConvertible {
    package var message: String
    package init(message: String) { self.message = message }
    package var description: String { message }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    /// The text without leading and trailing spaces, tabs and line breaks (no Foundation needed).
    fileprivate func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
