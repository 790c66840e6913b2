import Foundation
import ChatBridgeCore

/// Events made up for checking and trying sinks: what `chatbridge sinks test` sends when
/// no `--event` is given, and what a JSON body template is rendered with when the
/// configuration is loaded.
///
/// ``hostile`` carries a chat name built to break whatever escapes it badly: shell text,
/// quotes and backslashes, Slack and Discord mentions, markup, a line break and a tab,
/// U+2028, and a replacement character where a lone surrogate was.
package enum SampleEvent {
    /// A LinkedIn chat with 3 unread messages, was 0, matched by rule `sample`.
    package static let changed: JSONValue = event(
        id: "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77", type: "chat.changed", kinds: ["unread.increased"],
        name: "Jane Doe", unread: 3, previousUnread: 0)

    /// The chat name of ``hostile``.
    package static let hostileName = "$(touch /tmp/pwned) `id` \"quoted\" 'single' \\back <!channel> @everyone @channel <users/all> </script>&amp;\nline\ttab\u{2028}\u{FFFD} 😀"

    /// A new chat whose name is ``hostileName``.
    package static let hostile: JSONValue = event(
        id: "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a78", type: "chat.added", kinds: ["chat.added"],
        name: hostileName, unread: 1, previousUnread: nil)

    /// A source whose account needs a person.
    package static let accountError: JSONValue = [
        "id": "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a79",
        "type": "account.error",
        "occurred_at": "2026-11-24T22:05:15.123Z",
        "source": "main",
        "account_id": "acc_123",
        "account_type": "LINKEDIN",
        "error": ["status": 401, "type": "errors/disconnected_account", "title": "Disconnected account", "detail": "Reconnect it"],
        "rule": "sample",
    ]

    /// Every sample, each as delivered (with `"rule": "sample"`).
    package static let all: [JSONValue] = [changed, hostile, accountError]

    private static func event(
        id: String, type: String, kinds: [String], name: String, unread: Int64, previousUnread: Int64?
    ) -> JSONValue {
        let chat: JSONValue = [
            "id": "chat_456", "account_id": "acc_123", "account_type": "LINKEDIN", "name": .string(name),
            "unread_count": .int(unread), "archived": 0, "timestamp": "2026-11-24T22:05:00.000Z",
        ]
        var previous: JSONValue = .null
        var changes: JSONValue = [:]
        if let previousUnread, case .object(var old) = chat {
            old["unread_count"] = .int(previousUnread)
            previous = .object(old)
            changes = ["unread_count": ["from": .int(previousUnread), "to": .int(unread)]]
        }
        return [
            "id": .string(id),
            "type": .string(type),
            "kinds": .array(kinds.map(JSONValue.string)),
            "occurred_at": "2026-11-24T22:05:15.123Z",
            "source": "main",
            "account_id": "acc_123",
            "account_type": "LINKEDIN",
            "chat_id": "chat_456",
            "chat": chat,
            "previous": previous,
            "changes": changes,
            "rule": "sample",
        ]
    }
}
