import Foundation
import ChatBridgeCore

/// How long a source may go without a complete poll before `chatbridge status` and
/// `/healthz` call it stale: 3 of its intervals, but never less than
/// ``minimumAllowance``.
///
/// The floor matters for sub-second intervals (`interval: 200ms` in tests and demos):
/// 3 intervals would be 0.6 s, less than one poll of a large workspace takes, so a
/// healthy source would flicker between fine and stale.
///
/// ```swift
/// PollFreshness.allowance(interval: .seconds(30))          // 90
/// PollFreshness.allowance(interval: .milliseconds(200))    // 10
/// PollFreshness.age(0.84)                                  // "0.8s"
/// ```
package enum PollFreshness {
    /// Seconds a source may always go without a complete poll, whatever its interval.
    package static let minimumAllowance: Double = 10

    /// Seconds since the last complete poll after which a source is stale.
    package static func allowance(interval: Duration) -> Double {
        max(3 * interval.seconds, minimumAllowance)
    }

    /// An age in seconds for people: whole seconds from 10 s on, tenths below.
    package static func age(_ seconds: Double) -> String {
        seconds >= 10 ? "\(Int(seconds.rounded()))s" : String(format: "%.1fs", seconds)
    }
}
