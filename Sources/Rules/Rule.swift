import CEL
import Foundation
import ChatBridgeCore
import Formats

/// One rule of a rule file (rules.md): which events matter and where they go.
///
/// Rules come from ``RuleSet/load(path:configuration:currentDirectory:)``, which
/// validates every key and compiles the `when` condition once; a `Rule` is therefore
/// always usable. Matching lives on ``RuleSet`` (``RuleSet/evaluate(_:now:)``), which
/// builds the condition's variables once per event for all rules.
///
/// ```yaml
/// name: linkedin-inmail-unread
/// on: [unread.increased, chat.added]
/// when: chat.account_type == "LINKEDIN" && chat.unread_count > 0
/// send: [team-slack, stdout]
/// throttle: 15m
/// ```
package struct Rule: Sendable {
    /// Unique across all rule files; `[A-Za-z0-9_.-]+`. Written into outbox rows, logs,
    /// the event's `rule` member and webhook ids.
    package var name: String
    /// What the rule is for, in words; `nil` when not written.
    package var description: String?
    /// The event kinds and types (`unread.increased`, `chat.changed`, ...) the rule is
    /// about: an event is considered when its type or any of its kinds is listed. `nil`
    /// (no `on`) considers every event.
    package var on: Set<String>?
    /// The `when` condition, compiled.
    package var condition: RuleCondition
    /// The sink names to deliver to, in the order written; never empty. Default `[stdout]`.
    package var sinks: [String]
    /// At most one delivery per chat within this window; enforced by the store.
    package var throttle: Duration?
    /// Mustache text that overrides the sink's own template for the text it renders
    /// (slack/discord/teams bodies, exec arguments' `{{text}}`); parsed at load. Its
    /// text as written is `template?.text`.
    package var template: DeliveryTemplate?
    /// A disabled rule is loaded and checked but matches nothing.
    package var isEnabled: Bool
    /// A daily window in which deliveries wait.
    package var quietHours: QuietHours?
    /// Matches within this window go out as one delivery per sink.
    package var digest: Duration?
    /// Where the rule is defined: its file as shown to the user, and the line and
    /// column of the rule's map.
    package var file: String
    package var line: Int
    package var column: Int

    /// Whether `event` is one this rule's `on` selects.
    package func selects(_ event: Event) -> Bool {
        guard let on else { return true }
        return on.contains(event.type.rawValue) || event.kinds.contains { on.contains($0.rawValue) }
    }

    /// The words `on` accepts: every event type and every change kind.
    package static let triggerNames: Set<String> =
        Set(EventType.allCases.map(\.rawValue)).union(ChangeKind.allCases.map(\.rawValue))

    /// `[A-Za-z0-9_.-]+`, at most 100 characters.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.count <= 100 && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || $0 == "_" || $0 == "-" || $0 == "."
        }
    }
}

/// A rule's `when`: a YAML `true`/`false` (or no `when`, which is `true`), or a CEL
/// expression compiled at load.
package struct RuleCondition: Sendable {
    /// The expression as written (after YAML decoding), or `true`/`false`.
    package let source: String
    private let body: Body

    private enum Body: Sendable {
        case constant(Bool)
        case expression(CELProgram)
    }

    /// The condition that is always `value` (`when: true`, `when: false`, no `when`).
    package static func constant(_ value: Bool) -> RuleCondition {
        RuleCondition(source: value ? "true" : "false", body: .constant(value))
    }

    /// Compiles `expression` against the variables rules see (``RuleVariables/names``) and
    /// refuses one that cannot be a bool (`chat.unread_count`: an int); a `dyn` one (an
    /// undocumented field, `dyn(x)`) is accepted and checked on each event.
    package static func compile(_ expression: String) throws(CELCompileError) -> RuleCondition {
        let program = try CELProgram.compile(expression, declarations: RuleVariables.declarations, expecting: .bool)
        return RuleCondition(source: expression, body: .expression(program))
    }

    private init(source: String, body: Body) {
        self.source = source
        self.body = body
    }

    /// The variables the condition reads (``RuleVariables/names``): none for a constant.
    package var variables: Set<String> {
        switch body {
        case .constant: []
        case .expression(let program): program.globals
        }
    }

    /// `true` or `false`, or why the expression has no boolean value for this event
    /// (a missing field, a wrong type, a result that is not a bool).
    package func evaluate(_ activation: CELActivation) -> Result<Bool, RuleConditionError> {
        switch body {
        case .constant(let value):
            return .success(value)
        case .expression(let program):
            switch program.evaluate(activation) {
            case .success(.bool(let value)):
                return .success(value)
            case .success(let other):
                return .failure(RuleConditionError(message: "the condition's value is of type \(other.typeName), not bool"))
            case .failure(let error):
                return .failure(RuleConditionError(message: "\(error)"))
            }
        }
    }
}

/// Why a rule's condition has no boolean value for an event.
package struct RuleConditionError: Error, Sendable, Hashable, CustomStringConvertible {
    package var message: String
    package init(message: String) { self.message = message }
    package var description: String { message }
}

/// A rule's `quiet_hours`: a daily window, in a time zone, in which its deliveries wait.
///
/// `from` after `to` wraps midnight (`22:00`–`07:00`). A time `t` is inside when
/// `from <= t < to` (or, wrapping, `t >= from || t < to`).
package struct QuietHours: Sendable, Hashable {
    /// Minutes after midnight, 0..<1440.
    package var fromMinute: Int
    /// Minutes after midnight, 0..<1440; never equal to ``fromMinute``.
    package var toMinute: Int
    /// A tz database zone, `UTC` by default.
    package var timeZone: TimeZone

    package init(fromMinute: Int, toMinute: Int, timeZone: TimeZone) {
        self.fromMinute = fromMinute
        self.toMinute = toMinute
        self.timeZone = timeZone
    }

    /// Whether `date` falls inside the window.
    package func contains(_ date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.hour, .minute], from: date)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        if fromMinute < toMinute { return minute >= fromMinute && minute < toMinute }
        return minute >= fromMinute || minute < toMinute
    }

    /// The first moment at or after `date` that is outside the window (`date` itself
    /// when it is outside): when a delivery held by quiet hours may go.
    package func end(after date: Date) -> Date {
        guard contains(date) else { return date }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let target = DateComponents(hour: toMinute / 60, minute: toMinute % 60, second: 0)
        return calendar.nextDate(after: date, matching: target, matchingPolicy: .nextTime) ?? date
    }

    /// `H:MM` or `HH:MM`, 00:00 to 23:59, as minutes after midnight.
    static func parseTime(_ text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
              parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let hour = Int(parts[0]), let minute = Int(parts[1]), hour < 24, minute < 60
        else { return nil }
        return hour * 60 + minute
    }
}
