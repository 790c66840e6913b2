import Foundation

/// What an event is about: a chat of a source's snapshot, or the source's health.
package enum EventType: String, Sendable, Hashable, CaseIterable, Codable {
    case chatAdded = "chat.added"
    case chatChanged = "chat.changed"
    case chatRemoved = "chat.removed"
    case accountError = "account.error"
    case accountRecovered = "account.recovered"
}

/// One semantic change found between two snapshots of a chat (events.md, "Kinds").
///
/// The cases are declared in the order of the spec's table; an event lists its kinds
/// in this order.
package enum ChangeKind: String, Sendable, Hashable, CaseIterable, Codable {
    case chatAdded = "chat.added"
    case chatRemoved = "chat.removed"
    case unreadIncreased = "unread.increased"
    case unreadDecreased = "unread.decreased"
    case unreadCleared = "unread.cleared"
    case chatArchived = "chat.archived"
    case chatUnarchived = "chat.unarchived"
    case chatPinned = "chat.pinned"
    case chatUnpinned = "chat.unpinned"
    case chatMuted = "chat.muted"
    case chatUnmuted = "chat.unmuted"
    case chatMuteChanged = "chat.mute_changed"
    case chatRenamed = "chat.renamed"
    case chatActivity = "chat.activity"
    case chatReadOnlyChanged = "chat.read_only_changed"
    case chatMoved = "chat.moved"
    case chatUpdated = "chat.updated"

    /// The position in the spec's table, for ordering.
    package var order: Int { Self.allCases.firstIndex(of: self)! }
}

/// A top-level field whose JSON value differs between the stored and the received chat.
package struct FieldChange: Sendable, Hashable {
    package var field: String
    /// `.null` when the field did not exist before.
    package var from: JSONValue
    /// `.null` when the field disappeared.
    package var to: JSONValue

    package init(field: String, from: JSONValue, to: JSONValue) {
        self.field = field
        self.from = from
        self.to = to
    }
}

/// An event, as detected and stored (events.md, "Shape").
///
/// Its ``id`` is assigned once, at detection, and travels unchanged through every
/// delivery, retry and replay: receivers deduplicate on it.
package struct Event: Sendable, Hashable {
    package var id: String
    package var type: EventType
    package var kinds: [ChangeKind]
    package var occurredAt: Date
    package var source: String
    package var accountID: String?
    package var accountType: String?
    package var chatID: String?
    /// The chat as the API sent it this time (for `chat.removed`, the last stored one).
    package var chat: JSONValue?
    /// The chat as stored from the last complete snapshot; `nil` for `chat.added`.
    package var previous: JSONValue?
    /// Every top-level field that differs, in the order of the received chat's fields.
    package var changes: [FieldChange]
    /// The API's error object (`status`, `type`, `title`, `detail`), for `account.*` events.
    package var error: JSONValue?

    package init(
        id: String, type: EventType, kinds: [ChangeKind], occurredAt: Date, source: String,
        accountID: String? = nil, accountType: String? = nil, chatID: String? = nil,
        chat: JSONValue? = nil, previous: JSONValue? = nil, changes: [FieldChange] = [],
        error: JSONValue? = nil
    ) {
        self.id = id
        self.type = type
        self.kinds = kinds
        self.occurredAt = occurredAt
        self.source = source
        self.accountID = accountID
        self.accountType = accountType
        self.chatID = chatID
        self.chat = chat
        self.previous = previous
        self.changes = changes
        self.error = error
    }

    /// The event as the JSON object that users see, with `rule` when a rule matched.
    package func json(rule: String? = nil) -> JSONValue {
        var object = JSONObject()
        object["id"] = .string(id)
        object["type"] = .string(type.rawValue)
        object["kinds"] = .array(kinds.map { .string($0.rawValue) })
        object["occurred_at"] = .string(Timestamp.iso8601(occurredAt))
        object["source"] = .string(source)
        object["account_id"] = accountID.map(JSONValue.string) ?? .null
        object["account_type"] = accountType.map(JSONValue.string) ?? .null
        switch type {
        case .chatAdded, .chatChanged, .chatRemoved:
            object["chat_id"] = chatID.map(JSONValue.string) ?? .null
            object["chat"] = chat ?? .null
            object["previous"] = previous ?? .null
            object["changes"] = changesJSON
        case .accountError, .accountRecovered:
            object["error"] = error ?? .null
        }
        if let rule { object["rule"] = .string(rule) }
        return .object(object)
    }

    /// ``changes`` as the event's JSON shows them: `{FIELD: {"from": …, "to": …}}`.
    package var changesJSON: JSONValue {
        var object = JSONObject()
        for change in changes {
            object[change.field] = .object(["from": change.from, "to": change.to])
        }
        return .object(object)
    }

    /// Reads an event back from its JSON object (as stored, or as a user wrote it for
    /// `chatbridge rules test`). Unknown members are ignored; `rule` is dropped.
    package init(json: JSONValue) throws(EventDecodingError) {
        guard let object = json.objectValue else { throw EventDecodingError("an event must be a JSON object") }
        guard let typeName = object["type"]?.stringValue, let type = EventType(rawValue: typeName) else {
            throw EventDecodingError("\"type\" must be one of \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var kinds: [ChangeKind] = []
        for value in object["kinds"]?.arrayValue ?? [] {
            guard let name = value.stringValue, let kind = ChangeKind(rawValue: name) else {
                throw EventDecodingError("unknown kind \(value.compactString) in \"kinds\"")
            }
            kinds.append(kind)
        }
        var changes: [FieldChange] = []
        for member in object["changes"]?.objectValue ?? JSONObject() {
            changes.append(FieldChange(field: member.key, from: member.value["from"] ?? .null, to: member.value["to"] ?? .null))
        }
        let occurredAt = object["occurred_at"]?.stringValue.flatMap(Timestamp.parseISO8601) ?? Date()
        self.init(
            id: object["id"]?.stringValue ?? "",
            type: type,
            kinds: kinds,
            occurredAt: occurredAt,
            source: object["source"]?.stringValue ?? "",
            accountID: object["account_id"]?.stringValue,
            accountType: object["account_type"]?.stringValue,
            chatID: object["chat_id"]?.stringValue,
            chat: object["chat"].flatMap { $0.isNull ? nil : $0 },
            previous: object["previous"].flatMap { $0.isNull ? nil : $0 },
            changes: changes,
            error: object["error"].flatMap { $0.isNull ? nil : $0 }
        )
    }
}

/// Why a JSON value could not be read as an event.
package struct EventDecodingError: Error, Sendable, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}
