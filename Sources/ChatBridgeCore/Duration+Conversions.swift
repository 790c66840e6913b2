import Foundation

// The one place where a `Duration` becomes seconds, nanoseconds or text. Every stage
// that needs one of these calls it here, so that none drops fractions or caps
// differently from another (a `200ms` interval is 0.2 s everywhere, never 0 s).

extension Duration {
    /// The duration in seconds, fractions included: `.milliseconds(200).seconds == 0.2`.
    package var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds, clamped to `0...Int64.max` (a negative duration
    /// is 0, an overflowing one `Int64.max`): what timers and deadlines take.
    package var clampedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return Int64.max }
        let (sum, overflow2) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? Int64.max : max(0, sum)
    }

    /// A duration of `seconds` (fractions kept to the nanosecond, clamped at 0 and at
    /// about 292 years).
    package static func seconds(exactly seconds: Double) -> Duration {
        guard seconds.isFinite, seconds > 0 else { return .zero }
        return .nanoseconds(Int64(min(seconds * 1e9, Double(Int64.max / 2)).rounded(.down)))
    }

    /// How a person reads it in a message: `10 s`, `0.2 s`, `1.5 s`.
    package var secondsText: String {
        let value = seconds
        if value == value.rounded(), abs(value) < 1e15 { return "\(Int(value)) s" }
        return "\(value) s"
    }
}

extension Date {
    /// This date moved by `duration` (fractions kept).
    package func adding(_ duration: Duration) -> Date {
        addingTimeInterval(duration.seconds)
    }
}
