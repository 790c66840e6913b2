import Foundation
import ChatBridgeCore
/// The body shape of a webhook (delivery.md, "webhook"): the event itself, or a chat
/// message for Slack, Discord or Microsoft Teams carrying one line of TEXT.
///
/// Every body is built as a ``JSONValue`` and written by its writer, so it is valid JSON
/// whatever the chat contains; TEXT is escaped for its format exactly once (Slack's
/// `&amp;`, `&lt;`, `&gt;`), then as a JSON string.
///
/// ```swift
/// let text = DeliverySummary.text(for: event)          // or a template's rendering
/// let body = DeliveryFormat.slack.body(event: event, text: text)
/// // {"text":"LinkedIn · Jane &lt;3: 3 unread (was 0)"}
/// ```
package enum DeliveryFormat: String, Sendable, Hashable, CaseIterable {
    /// The event with `rule`.
    case json
    /// A Slack incoming-webhook message: `{"text": TEXT}`.
    case slack
    /// A Discord webhook message: `{"content": TEXT, "allowed_mentions": {"parse": []}}`.
    case discord
    /// A Teams Workflows message: an Adaptive Card with one TextBlock of TEXT.
    case teams

    /// Discord rejects a `content` longer than this.
    package static let discordContentLimit = 2000

    /// Whether the body carries TEXT (so a template or the summary must be rendered).
    package var usesText: Bool { self != .json }

    /// The body for `event` (the event JSON as delivered, with `rule`) and its `text`.
    package func bodyValue(event: JSONValue, text: String) -> JSONValue {
        switch self {
        case .json:
            return event
        case .slack:
            return .object(["text": .string(Self.slackEscaped(text))])
        case .discord:
            // allowed_mentions with an empty parse list: a chat named "@everyone" must not
            // ping a whole server.
            return .object([
                "content": .string(TextLimit.truncated(text, maxUTF16Units: Self.discordContentLimit)),
                "allowed_mentions": .object(["parse": .array([])]),
            ])
        case .teams:
            let textBlock: JSONValue = .object([
                "type": .string("TextBlock"),
                "text": .string(text),
                "wrap": .bool(true),
            ])
            let card: JSONValue = .object([
                "$schema": .string("http://adaptivecards.io/schemas/adaptive-card.json"),
                "type": .string("AdaptiveCard"),
                "version": .string("1.4"),
                "body": .array([textBlock]),
            ])
            return .object([
                "type": .string("message"),
                "attachments": .array([
                    .object([
                        "contentType": .string("application/vnd.microsoft.card.adaptive"),
                        "content": card,
                    ])
                ]),
            ])
        }
    }

    /// The body as compact JSON bytes.
    package func body(event: JSONValue, text: String) -> [UInt8] {
        bodyValue(event: event, text: text).compactBytes
    }

    /// Slack's three control characters as entities (Slack's "Escaping text"): `&` first,
    /// so that the entities made for `<` and `>` are not escaped again. Works on Unicode
    /// scalars, not characters: a `<` followed by a combining mark is one character that
    /// is not `"<"`, yet Slack would still read its `<`.
    package static func slackEscaped(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out.append(contentsOf: "&amp;".unicodeScalars)
            case "<": out.append(contentsOf: "&lt;".unicodeScalars)
            case ">": out.append(contentsOf: "&gt;".unicodeScalars)
            default: out.append(scalar)
            }
        }
        return String(out)
    }
}
