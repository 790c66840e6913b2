import Foundation
import GRDB
import Store

extension SQLiteStore {
    /// Stored events matching `query`, oldest first.
    package func events(_ query: EventQuery) async throws -> [StoredEvent] {
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
    package func event(id: String) async throws -> StoredEvent? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT seq, id, json FROM events WHERE id = ?", arguments: [id]).map {
                StoredEvent(sequence: $0[0], id: $0[1], json: $0[2])
            }
        }
    }

    /// The position of the newest stored event (0 when there is none).
    package func lastEventSequence() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM events") ?? 0 }
    }
}
