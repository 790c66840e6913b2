import ChatBridgeCore
import Foundation

/// One thing to write to the outbox for an event: what the rules decided, for a store to
/// carry out in the poll's transaction without deciding anything itself.
package enum OutboxDecision: Sendable, Hashable {
    /// A delivery row of (event, `rule`, `sink`), first due at `due` (now, or the end of
    /// the rule's quiet hours when the event was detected inside them).
    case deliver(rule: String?, sink: String, due: Date)
    /// The event joins the open digest `digestID` of (`rule`, `sink`).
    case joinDigest(rule: String, sink: String, digestID: Int64)
    /// The event opens a digest of (`rule`, `sink`) that closes at `closesAt`; its one
    /// delivery row is due at `due` (the close, or the end of quiet hours after it).
    case openDigest(rule: String, sink: String, closesAt: Date, due: Date)
    /// `rule` delivers for this chat now: nothing more for it until `until`.
    case startThrottle(rule: String, until: Date)
    /// `rule` matched but was throttled until `until`: nothing is written for it.
    case throttled(rule: String, until: Date)
}

/// What a store knows that the rules' decisions depend on, read in the poll's transaction.
package struct OutboxFacts {
    /// Until when `rule` is throttled for the event's ordering key, if it is.
    package var throttledUntil: (_ rule: String) throws -> Date?
    /// The digest of (`rule`, `sink`) still open at the event's time, if one is.
    package var openDigest: (_ rule: String, _ sink: String) throws -> Int64?

    package init(
        throttledUntil: @escaping (_ rule: String) throws -> Date?,
        openDigest: @escaping (_ rule: String, _ sink: String) throws -> Int64?
    ) {
        self.throttledUntil = throttledUntil
        self.openDigest = openDigest
    }

    /// Nothing throttled, no digest open: a first poll, or a test.
    package static var none: OutboxFacts { OutboxFacts(throttledUntil: { _ in nil }, openDigest: { _, _ in nil }) }
}

/// The rules' policies for one event's routes (rules.md `throttle`, `digest`,
/// `quiet_hours`): pure, tested with plain values.
package enum OutboxPlanner {
    /// What to write for an event detected at `now` whose routes are `routes`.
    ///
    /// Per route: a throttled rule writes nothing (and says until when); a rule with a
    /// `digest` window joins the open digest of each of its sinks or opens one closing a
    /// window from now; any other route makes one row per sink, due now or at the end of
    /// the rule's quiet hours. A rule that delivers starts its throttle window.
    package static func decisions(for routes: [OutboxRoute], now: Date, facts: OutboxFacts) throws -> [OutboxDecision] {
        var decisions: [OutboxDecision] = []
        for route in routes {
            if let rule = route.rule, let throttle = route.throttle {
                if let until = try facts.throttledUntil(rule), until > now {
                    decisions.append(.throttled(rule: rule, until: until))
                    continue
                }
                decisions.append(.startThrottle(rule: rule, until: now.adding(throttle)))
            }
            if let rule = route.rule, let window = route.digest {
                for sink in route.sinks {
                    if let open = try facts.openDigest(rule, sink) {
                        decisions.append(.joinDigest(rule: rule, sink: sink, digestID: open))
                    } else {
                        let closesAt = now.adding(window)
                        let due = route.quietHours?.end(after: closesAt) ?? closesAt
                        decisions.append(.openDigest(rule: rule, sink: sink, closesAt: closesAt, due: due))
                    }
                }
                continue
            }
            let due = route.quietHours?.end(after: now) ?? now
            for sink in route.sinks {
                decisions.append(.deliver(rule: route.rule, sink: sink, due: due))
            }
        }
        return decisions
    }
}
