import CEL
import Foundation
import Logging
import ChatBridgeConfig
import ChatBridgeCore
import Detect

/// The variables a rule's `when` sees (rules.md, "Conditions: CEL").
///
/// | variable | value |
/// | --- | --- |
/// | `event` | the whole event JSON (``Event/json(rule:)`` without `rule`) |
/// | `chat` | the chat object; `null` for `account.*` events |
/// | `previous` | the stored chat; an empty map when there is none (`chat.added`) |
/// | `changes` | `{field: {from, to}}`; an empty map for `account.*` events |
/// | `kinds` | the kinds, a list of strings |
/// | `type` | the event type; it shadows CEL's built-in `type` |
/// | `source` | the source name |
/// | `now` | a timestamp: when the rules are evaluated |
/// | `muted` | whether the chat is muted at detection time (``Muting/isMuted(_:at:)`` of `chat.muted_until` at `occurred_at`) |
package enum RuleVariables {
    /// Every variable name a condition may use.
    package static let names: Set<String> = ["event", "chat", "previous", "changes", "kinds", "type", "source", "now", "muted"]

    /// The fields of a chat whose type the API documents (its booleans are the integers
    /// 0 and 1); any other field is `dyn`. Any field may be missing or null.
    package static let chatType = CELType.object([
        "object": .string, "id": .string, "account_id": .string, "account_type": .string,
        "provider_id": .string, "attendee_provider_id": .string, "name": .string, "subject": .string,
        "timestamp": .string, "content_type": .string, "folder": .list(.string),
        "type": .int, "unread_count": .int, "archived": .int, "read_only": .int, "pinned": .int,
    ])

    /// The static types of the variables, so that a condition sure not to be a bool
    /// (`chat.unread_count`, `kinds`) is refused when the rule is loaded.
    package static let types: [String: CELType] = [
        "event": .object([
            "id": .string, "type": .string, "kinds": .list(.string), "occurred_at": .string, "source": .string,
            "account_id": .string, "account_type": .string, "chat_id": .string, "chat": chatType, "previous": chatType,
            "changes": .map(.object(["from": .dyn, "to": .dyn])), "rule": .string,
        ]),
        "chat": chatType,
        "previous": chatType,
        "changes": .map(.object(["from": .dyn, "to": .dyn])),
        "kinds": .list(.string),
        "type": .string,
        "source": .string,
        "now": .timestamp,
        "muted": .bool,
    ]

    /// What conditions are compiled against.
    package static let declarations = CELDeclarations(variables: names, types: types)

    /// The variables for `event`, evaluated at `now`. Built once per event and shared by
    /// every rule.
    ///
    /// - Parameter reading: the variables the conditions read (``RuleCondition/variables``),
    ///   or `nil` for all. `chat`, `previous`, `changes` and `event` are converted from
    ///   JSON only when read (the conversion of the chats is the costly part); the others
    ///   are always there.
    package static func activation(for event: Event, now: Date, reading: Set<String>? = nil) -> CELActivation {
        guard let reading, !reading.contains("event") else { return allVariables(for: event, now: now) }
        var variables: [String: CELValue] = [
            "kinds": .list(event.kinds.map { .string($0.rawValue) }),
            "type": .string(event.type.rawValue),
            "source": .string(event.source),
            "now": .timestamp(CELTimestamp(date: now)),
            "muted": .bool(Muting.isMuted(event.chat?["muted_until"], at: event.occurredAt)),
        ]
        let isChatEvent = event.type == .chatAdded || event.type == .chatChanged || event.type == .chatRemoved
        if reading.contains("chat") {
            variables["chat"] = isChatEvent ? CELValue(json: event.chat ?? .null) : .null
        }
        if reading.contains("previous") {
            if isChatEvent, let previous = event.previous, !previous.isNull {
                variables["previous"] = CELValue(json: previous)
            } else {
                variables["previous"] = .map(CELMap())
            }
        }
        if reading.contains("changes") {
            variables["changes"] = isChatEvent ? CELValue(json: event.changesJSON) : .map(CELMap())
        }
        return CELActivation(variables)
    }

    /// Every variable for `event`, all converted (`event` among them).
    private static func allVariables(for event: Event, now: Date) -> CELActivation {
        let eventValue = CELValue(json: event.json())
        var members = CELMap()
        if case .map(let map) = eventValue { members = map }
        let chat = members["chat"] ?? .null
        let previous: CELValue = {
            if let value = members["previous"], value != .null { return value }
            return .map(CELMap())
        }()
        let changes: CELValue = members["changes"] ?? .map(CELMap())
        return CELActivation([
            "event": eventValue,
            "chat": chat,
            "previous": previous,
            "changes": changes,
            "kinds": .list(event.kinds.map { .string($0.rawValue) }),
            "type": .string(event.type.rawValue),
            "source": .string(event.source),
            "now": .timestamp(CELTimestamp(date: now)),
            "muted": .bool(Muting.isMuted(event.chat?["muted_until"], at: event.occurredAt)),
        ])
    }
}

/// How one enabled rule judged one event.
package struct RuleEvaluation: Sendable, Hashable {
    /// Why a rule did or did not match.
    package enum Outcome: Sendable, Hashable {
        /// `on` selects the event and `when` is true: the event goes to the rule's sinks.
        case matched
        /// `on` lists neither the event's type nor any of its kinds; `when` was not evaluated.
        case notSelected
        /// `when` is false.
        case conditionFalse
        /// `when` has no boolean value for this event (a missing field, a wrong type...):
        /// no match.
        case conditionError(String)
    }

    /// The rule's name.
    package var rule: String
    package var outcome: Outcome

    package init(rule: String, outcome: Outcome) {
        self.rule = rule
        self.outcome = outcome
    }

    package var isMatch: Bool { outcome == .matched }
}

extension RuleSet {
    /// Judges `event` against every enabled rule, in order: one ``RuleEvaluation`` per
    /// enabled rule. Pure: `now` is what the `now` variable holds.
    package func evaluate(_ event: Event, now: Date) -> [RuleEvaluation] {
        let enabled = enabledRules
        guard !enabled.isEmpty else { return [] }
        // Built lazily: an event no rule's `on` selects costs no JSON conversion, and a
        // variable no condition reads is not converted.
        var activation: CELActivation?
        return enabled.map { rule in
            guard rule.selects(event) else { return RuleEvaluation(rule: rule.name, outcome: .notSelected) }
            if activation == nil {
                let reading = enabled.reduce(into: Set<String>()) { $0.formUnion($1.condition.variables) }
                activation = RuleVariables.activation(for: event, now: now, reading: reading)
            }
            switch rule.condition.evaluate(activation!) {
            case .success(true): return RuleEvaluation(rule: rule.name, outcome: .matched)
            case .success(false): return RuleEvaluation(rule: rule.name, outcome: .conditionFalse)
            case .failure(let error): return RuleEvaluation(rule: rule.name, outcome: .conditionError(error.message))
            }
        }
    }

    /// The outbox routes of `event`: with no rules at all, `stdout` with no rule;
    /// otherwise one route per matching rule, to its sinks, with its throttle, quiet hours
    /// and digest window.
    /// Conditions that error are returned in `failures` for the caller to log.
    package func routes(for event: Event, now: Date) -> (routes: [OutboxRoute], failures: [(rule: String, message: String)]) {
        if isEmpty {
            return ([OutboxRoute(rule: nil, sinks: [SinkConfiguration.standardOutputName])], [])
        }
        var routes: [OutboxRoute] = []
        var failures: [(rule: String, message: String)] = []
        for evaluation in evaluate(event, now: now) {
            switch evaluation.outcome {
            case .matched:
                guard let rule = rule(named: evaluation.rule) else { continue }
                routes.append(OutboxRoute(
                    rule: rule.name, sinks: rule.sinks, throttle: rule.throttle, quietHours: rule.quietHours,
                    digest: rule.digest))
            case .conditionError(let message):
                failures.append((evaluation.rule, message))
            case .notSelected, .conditionFalse:
                break
            }
        }
        return (routes, failures)
    }

    /// The router the store calls for each detected event, inside the detection
    /// transaction (``EventRouter``): ``routes(for:now:)`` with `now` from the clock. A
    /// condition that errors does not match; it is logged once per rule and event, as a
    /// warning with metadata `rule`, `event_id` and `error`, and the other rules go on.
    ///
    /// - Parameter now: the clock for the `now` variable; the system clock by default.
    package func router(logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) -> EventRouter {
        let ruleSet = self
        return { event in
            let (routes, failures) = ruleSet.routes(for: event, now: now())
            for failure in failures {
                logger.warning(
                    "rule condition failed; the rule does not match this event",
                    metadata: [
                        "rule": .string(failure.rule),
                        "event_id": .string(event.id),
                        "error": .string(failure.message),
                    ])
            }
            return routes
        }
    }
}
