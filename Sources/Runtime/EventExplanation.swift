import Foundation
import ChatBridgeConfig
import ChatBridgeCore
import Detect
import Rules
import Store

/// What `chatbridge explain EVENT_ID` says: for one stored event, every rule's verdict
/// and the reason. Pure: the rules judge the event as at detection (`now` is the event's
/// `occurred_at`), and the store's facts (the event's outbox rows, its digests, the
/// delivery that started a throttle) say what came of each match.
///
/// ```text
/// event 0193… chat.changed [unread.increased, chat.activity] main/chat_456 at 2026-11-24T22:05:15.123Z
/// whatsapp-unread: not selected: `on` is [chat.added]; the event is chat.changed with kinds unread.increased, chat.activity
/// linkedin-inmail: condition false: chat.account_type = "WHATSAPP", chat.content_type = absent
/// vip: throttled until 2026-11-24T22:15:00.000Z by the delivery of event 0193…a1 to team-slack
/// all-unread: sent: team-slack delivered (1 attempt, status 200); stdout delivered (1 attempt)
/// ```
package struct EventExplanation: Sendable {
    /// One rule's verdict.
    package struct Verdict: Sendable {
        package var rule: String?
        /// `disabled`, `not_selected`, `condition_false`, `condition_error`, `throttled`,
        /// `digest`, `postponed`, `sent`, `matched_no_delivery`, `delivered_under_older_rules`.
        package var verdict: String
        package var reason: String
        package var details: JSONObject = JSONObject()
    }

    package var event: Event
    package var verdicts: [Verdict]
    /// Rule files changed since the event (their paths), or `[]`.
    package var rulesChangedSince: [String]

    /// Judges `event` against `rules` and the store's facts.
    ///
    /// - Parameters:
    ///   - throttledBy: per rule with a `throttle`, the latest earlier delivery of that
    ///     rule for the event's ordering key, as the store has it.
    ///   - rulesChangedSince: rule files modified after the event: the verdicts then say
    ///     what the rules say now, and the store's rows what they said then.
    package static func make(
        event: Event, rules: RuleSet, facts: EventDeliveryFacts, throttledBy: [String: ThrottlingDelivery],
        rulesChangedSince: [String]
    ) -> EventExplanation {
        let now = event.occurredAt
        var verdicts: [Verdict] = []
        var explainedRules = Set<String>()
        if rules.isEmpty {
            verdicts.append(Verdict(
                rule: nil, verdict: "sent", reason: "no rules are configured: every event goes to stdout; "
                    + Self.describe(facts.deliveries.filter { $0.rule == nil })))
        }
        var outcomes: [String: RuleEvaluation.Outcome] = [:]
        for evaluation in rules.evaluate(event, now: now) { outcomes[evaluation.rule] = evaluation.outcome }
        for rule in rules.rules {
            explainedRules.insert(rule.name)
            let rows = facts.deliveries.filter { $0.rule == rule.name }
            let digests = facts.digests.filter { $0.rule == rule.name }
            guard rule.isEnabled, let outcome = outcomes[rule.name] else {
                verdicts.append(Verdict(rule: rule.name, verdict: "disabled", reason: "disabled (enabled: false)"))
                continue
            }
            switch outcome {
            case .notSelected:
                let on = (rule.on ?? []).sorted().joined(separator: ", ")
                let kinds = event.kinds.map(\.rawValue).joined(separator: ", ")
                verdicts.append(Verdict(
                    rule: rule.name, verdict: "not_selected",
                    reason: "not selected: `on` is [\(on)]; the event is \(event.type.rawValue) with kinds \(kinds.isEmpty ? "(none)" : kinds)"))
            case .conditionFalse:
                let values = rule.condition.readValues(for: event, now: now)
                var read = JSONObject()
                for (path, value) in values { read[path] = value ?? .null }
                let shown = values.map { "\($0.path) = \($0.value.map { TextLimit.prefix($0.compactString, maxUTF8Bytes: 200) } ?? "absent")" }
                verdicts.append(Verdict(
                    rule: rule.name, verdict: "condition_false",
                    reason: "condition false: \(shown.isEmpty ? rule.condition.source : shown.joined(separator: ", "))",
                    details: ["values": .object(read), "when": .string(rule.condition.source)]))
            case .conditionError(let message):
                verdicts.append(Verdict(
                    rule: rule.name, verdict: "condition_error",
                    reason: "condition error (no match): \(message)", details: ["when": .string(rule.condition.source)]))
            case .matched:
                verdicts.append(matched(rule: rule, event: event, rows: rows, digests: digests, throttledBy: throttledBy[rule.name]))
                continue
            }
            if !rows.isEmpty || !digests.isEmpty {
                // The rule does not match now, yet it did at detection.
                verdicts[verdicts.count - 1].reason += "; but at detection it matched (the rules changed since): "
                    + Self.describe(rows)
            }
        }
        // Rows of rules that are gone.
        let goneRules = Set(facts.deliveries.compactMap(\.rule) + facts.digests.map(\.rule)).subtracting(explainedRules)
        for name in goneRules.sorted() {
            verdicts.append(Verdict(
                rule: name, verdict: "delivered_under_older_rules",
                reason: "no such rule now; it matched at detection: " + Self.describe(facts.deliveries.filter { $0.rule == name })))
        }
        return EventExplanation(event: event, verdicts: verdicts, rulesChangedSince: rulesChangedSince)
    }

    private static func matched(
        rule: Rule, event: Event, rows: [DeliveryRecord], digests: [DigestMembership], throttledBy: ThrottlingDelivery?
    ) -> Verdict {
        if !digests.isEmpty {
            let parts = digests.map { digest -> String in
                let state = digest.delivery.map { "\($0.status)" } ?? "open"
                return "digest \(digest.delivery?.eventID ?? String(digest.digestID)) to \(digest.sink) (closes \(Timestamp.iso8601(digest.closesAt)), \(state))"
            }
            return Verdict(rule: rule.name, verdict: "digest", reason: "matched; added to " + parts.joined(separator: "; "))
        }
        if rows.isEmpty {
            if let throttle = rule.throttle, let earlier = throttledBy {
                let until = earlier.createdAt.adding(throttle)
                if until > event.occurredAt {
                    return Verdict(
                        rule: rule.name, verdict: "throttled",
                        reason: "matched; throttled until \(Timestamp.iso8601(until)) by the delivery of event \(earlier.eventID) to \(earlier.sink)",
                        details: ["until": .string(Timestamp.iso8601(until)), "by_event": .string(earlier.eventID)])
                }
            }
            return Verdict(
                rule: rule.name, verdict: "matched_no_delivery",
                reason: "matches now, but no delivery was written at detection: the rules changed since the event")
        }
        if let quiet = rule.quietHours, quiet.contains(event.occurredAt),
           rows.contains(where: { $0.status == "pending" && $0.attempts == 0 })
        {
            let until = quiet.end(after: event.occurredAt)
            return Verdict(
                rule: rule.name, verdict: "postponed",
                reason: "matched; postponed by quiet hours until \(Timestamp.iso8601(until)): " + describe(rows),
                details: ["until": .string(Timestamp.iso8601(until))])
        }
        return Verdict(rule: rule.name, verdict: "sent", reason: "matched; sent: " + describe(rows))
    }

    /// `team-slack delivered (1 attempt, status 200); stdout pending (0 attempts)`.
    static func describe(_ rows: [DeliveryRecord]) -> String {
        guard !rows.isEmpty else { return "no delivery rows" }
        return rows.map { row in
            var text = "\(row.sink) \(row.status) (\(row.attempts) attempt\(row.attempts == 1 ? "" : "s")"
            if let status = row.lastStatus { text += ", status \(status)" }
            if let error = row.lastError { text += ", last error: \(TextLimit.prefix(error, maxUTF8Bytes: 120))" }
            return text + ")"
        }.joined(separator: "; ")
    }

    /// Lines for people: the event, a warning when the rules changed, one line per rule.
    package var lines: [String] {
        var lines = [
            "event \(event.id) \(event.type.rawValue) [\(event.kinds.map(\.rawValue).joined(separator: ", "))] "
                + "\(event.source)/\(event.chatID ?? "-") at \(Timestamp.iso8601(event.occurredAt))",
        ]
        if !rulesChangedSince.isEmpty {
            lines.append("note: the rules changed since the event (\(rulesChangedSince.joined(separator: ", "))): verdicts are today's rules; deliveries are what happened")
        }
        for verdict in verdicts { lines.append("\(verdict.rule ?? "(no rules)"): \(verdict.reason)") }
        return lines.map { StatusReport.printable($0) }
    }

    /// One JSON object: `{"event_id", "rules_changed_since", "rules": [{"rule", "verdict", "reason", ...}]}`.
    package var json: JSONValue {
        .object([
            "event_id": .string(event.id),
            "rules_changed_since": .array(rulesChangedSince.map(JSONValue.string)),
            "rules": .array(verdicts.map { verdict in
                var object: JSONObject = [
                    "rule": verdict.rule.map(JSONValue.string) ?? .null, "verdict": .string(verdict.verdict),
                    "reason": .string(verdict.reason),
                ]
                for member in verdict.details { object[member.key] = member.value }
                return .object(object)
            }),
        ])
    }
}
