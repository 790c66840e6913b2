import Foundation
/// A filter over stored events, as `chatbridge events` takes it.
package struct EventQuery: Sendable, Hashable {
    /// Only events that occurred at or after this date.
    package var since: Date?
    /// Only events of this type (`chat.changed`, `account.error`, ...).
    package var type: String?
    /// Only events with this kind among their kinds.
    package var kind: String?
    package var chatID: String?
    /// Only events stored after this position (for `--follow`).
    package var afterSequence: Int64?
    /// At most this many: the newest ones, still listed oldest first.
    package var limit: Int?

    package init(since: Date? = nil, type: String? = nil, kind: String? = nil, chatID: String? = nil,
                afterSequence: Int64? = nil, limit: Int? = nil) {
        self.since = since
        self.type = type
        self.kind = kind
        self.chatID = chatID
        self.afterSequence = afterSequence
        self.limit = limit
    }
}

/// A stored event: its position in detection order and its JSON text (without `rule`).
package struct StoredEvent: Sendable, Hashable {
    package var sequence: Int64
    package var id: String
    package var json: String

    package init(sequence: Int64, id: String, json: String) {
        self.sequence = sequence
        self.id = id
        self.json = json
    }
}
