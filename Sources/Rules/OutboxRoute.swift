import Foundation
import ChatBridgeCore
/// Where one event goes: the rule that matched (or `nil` with no rules at all) and
/// its sinks. Written as outbox rows in the event's transaction.
package struct OutboxRoute: Sendable, Hashable {
    package var rule: String?
    package var sinks: [String]
    /// At most one delivery per rule and chat within this window (rules.md `throttle`).
    package var throttle: Duration?
    /// The rule's quiet hours: a row written inside them is due at their end.
    package var quietHours: QuietHours?
    /// The rule's digest window: the event joins the open digest of (rule, sink), or
    /// opens one that goes out when the window closes.
    package var digest: Duration?

    package init(
        rule: String?, sinks: [String], throttle: Duration? = nil, quietHours: QuietHours? = nil,
        digest: Duration? = nil
    ) {
        self.rule = rule
        self.sinks = sinks
        self.throttle = throttle
        self.quietHours = quietHours
        self.digest = digest
    }
}

/// Decides, for each detected event, which outbox rows to write. Runs inside the
/// detection transaction, so it must be quick and must not do I/O.
package typealias EventRouter = @Sendable (Event) -> [OutboxRoute]
