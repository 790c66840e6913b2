import Foundation

/// When a failed delivery is tried again, and when it is given up (delivery.md,
/// "Retries and dead letters").
///
/// Exponential backoff with full jitter: after attempt *n* fails, the next one waits a
/// random time in `[0, min(maxBackoff, initialBackoff · 2^(n-1))]`, or until the
/// receiver's `Retry-After` time when that is later. After ``maxAttempts`` attempts the
/// delivery is dead. Full jitter spreads the retries of many deliveries that failed
/// together (a receiver's outage) instead of sending them back in one burst.
///
/// The random source is passed in, so that tests can pin the schedule:
///
/// ```swift
/// let policy = RetryPolicy(maxAttempts: 10, initialBackoff: .seconds(1), maxBackoff: .seconds(600))
/// var random = SystemRandomNumberGenerator()
/// switch policy.decision(afterFailedAttempt: 3, now: Date(), retryAfter: nil, using: &random) {
/// case .retry(let notBefore): print("again at", notBefore)   // within 4 s
/// case .giveUp: print("dead")
/// }
/// ```
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first one included; at least 1.
    public var maxAttempts: Int
    /// The longest wait after the first failed attempt.
    public var initialBackoff: Duration
    /// No computed wait is longer than this (a `Retry-After` may be).
    public var maxBackoff: Duration

    public init(maxAttempts: Int = 10, initialBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(600)) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// What to do after a failed attempt.
    public enum Decision: Sendable, Hashable {
        /// Try again, no earlier than `notBefore`.
        case retry(notBefore: Date)
        /// Attempts are exhausted: the delivery is dead.
        case giveUp
    }

    /// The upper bound of the wait after failed attempt `attempt` (1-based):
    /// `min(maxBackoff, initialBackoff · 2^(attempt-1))`.
    public func backoffCeiling(afterFailedAttempt attempt: Int) -> Duration {
        let initial = Self.seconds(initialBackoff)
        let ceiling = Self.seconds(maxBackoff)
        // 2^62 seconds outlives everything; capping the exponent keeps the arithmetic finite.
        let exponent = Double(min(max(attempt, 1) - 1, 62))
        let seconds = min(ceiling, initial * pow(2, exponent))
        return .nanoseconds(Int64((max(0, seconds) * 1e9).rounded(.down)))
    }

    /// A random wait in `[0, backoffCeiling(afterFailedAttempt:)]` (full jitter).
    public func delay(afterFailedAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let ceiling = backoffCeiling(afterFailedAttempt: attempt)
        let nanoseconds = Self.nanoseconds(ceiling)
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &random))
    }

    /// Retry or give up after failed attempt `attempt` (1-based: the count of attempts
    /// made so far, this one included).
    ///
    /// - Parameter retryAfter: the earliest time the receiver asked for (`Retry-After`);
    ///   the later of it and the jittered backoff wins.
    public func decision(
        afterFailedAttempt attempt: Int, now: Date, retryAfter: Date?, using random: inout some RandomNumberGenerator
    ) -> Decision {
        guard attempt < maxAttempts else { return .giveUp }
        let wait = delay(afterFailedAttempt: attempt, using: &random)
        var notBefore = now.addingTimeInterval(Self.seconds(wait))
        if let retryAfter, retryAfter > notBefore { notBefore = retryAfter }
        return .retry(notBefore: notBefore)
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? 0 : Int64.max }
        let (sum, overflow2) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? Int64.max : max(0, sum)
    }
}

/// The HTTP `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
public enum RetryAfter {
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
    public static func parse(_ header: String, now: Date) -> Date? {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            // Absurdly long numbers are clamped rather than rejected: the receiver wants a long pause.
            let seconds = Double(text.prefix(12)).map { min($0, 1e11) } ?? 0
            return now.addingTimeInterval(seconds)
        }
        return parseHTTPDate(text)
    }

    /// Parses an HTTP-date (any of its three forms) as UTC.
    public static func parseHTTPDate(_ text: String) -> Date? {
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
