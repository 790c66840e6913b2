import Foundation
import ChatBridgeConfig
import ChatBridgeCore
extension DeliveryFormat {
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
