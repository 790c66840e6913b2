import Foundation
import GRDB

/// A filter over stored events, as `chatbridge events` takes it.
public struct EventQuery: Sendable, Hashable {
    /// Only events that occurred at or after this date.
    public var since: Date?
    /// Only events of this type (`chat.changed`, `account.error`, ...).
    public var type: String?
    /// Only events with this kind among their kinds.
    public var kind: String?
    public var chatID: String?
    /// Only events stored after this position (for `--follow`).
    public var afterSequence: Int64?
    /// At most this many: the newest ones, still listed oldest first.
    public var limit: Int?

    public init(since: Date? = nil, type: String? = nil, kind: String? = nil, chatID: String? = nil,
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
public struct StoredEvent: Sendable, Hashable {
    public var sequence: Int64
    public var id: String
    public var json: String
}

extension SQLiteStore {
    /// Stored events matching `query`, oldest first.
    public func events(_ query: EventQuery) async throws -> [StoredEvent] {
        try await pool.read { db in
            var conditions: [String] = []
            var arguments: [any DatabaseValueConvertible] = []
            if let since = query.since { conditions.append("occurred_at >= ?"); arguments.append(since.storeValue) }
            if let type = query.type { conditions.append("type = ?"); arguments.append(type) }
            if let kind = query.kind {
                conditions.append("(' ' || kinds || ' ') LIKE ? ESCAPE '\\'")
                let escaped = kind.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                arguments.append("% \(escaped) %")
            }
            if let chat = query.chatID { conditions.append("chat_id = ?"); arguments.append(chat) }
            if let after = query.afterSequence { conditions.append("seq > ?"); arguments.append(after) }
            let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
            var sql = "SELECT seq, id, json FROM events" + whereClause
            if let limit = query.limit {
                sql = "SELECT * FROM (\(sql) ORDER BY seq DESC LIMIT \(max(0, limit))) ORDER BY seq"
            } else {
                sql += " ORDER BY seq"
            }
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map {
                StoredEvent(sequence: $0[0], id: $0[1], json: $0[2])
            }
        }
    }

    /// The stored event with this id, or `nil`.
    public func event(id: String) async throws -> StoredEvent? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT seq, id, json FROM events WHERE id = ?", arguments: [id]).map {
                StoredEvent(sequence: $0[0], id: $0[1], json: $0[2])
            }
        }
    }

    /// The position of the newest stored event (0 when there is none).
    public func lastEventSequence() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events") ?? 0 }
    }
}
