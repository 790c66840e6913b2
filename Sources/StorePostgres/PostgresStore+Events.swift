import Foundation
import PostgresNIO
import Store

extension PostgresStore {
    /// Stored events matching `query`, oldest first (the newest `limit` when it is set).
    package func events(_ query: EventQuery) async throws -> [StoredEvent] {
        let kindPattern = query.kind.map { kind in
            "% " + kind.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + " %"
        }
        let rows = try await rows("""
            SELECT seq, id, json FROM (
                SELECT seq, id, json FROM events
                WHERE (\(query.since)::TIMESTAMPTZ IS NULL OR occurred_at >= \(query.since))
                  AND (\(query.type)::TEXT IS NULL OR type = \(query.type))
                  AND (\(kindPattern)::TEXT IS NULL OR (' ' || kinds || ' ') LIKE \(kindPattern) ESCAPE '\\')
                  AND (\(query.chatID)::TEXT IS NULL OR chat_id = \(query.chatID))
                  AND (\(query.afterSequence)::BIGINT IS NULL OR seq > \(query.afterSequence))
                ORDER BY seq DESC
                LIMIT \(query.limit.map { max(0, $0) })
            ) newest ORDER BY seq
            """)
        return try rows.map { row in
            let (sequence, id, json) = try row.decode((Int64, String, String).self)
            return StoredEvent(sequence: sequence, id: id, json: json)
        }
    }

    package func event(id: String) async throws -> StoredEvent? {
        try await rows("SELECT seq, id, json FROM events WHERE id = \(id)").first.map { row in
            let (sequence, id, json) = try row.decode((Int64, String, String).self)
            return StoredEvent(sequence: sequence, id: id, json: json)
        }
    }

    package func lastEventSequence() async throws -> Int64 {
        try await rows("SELECT coalesce(max(seq), 0)::BIGINT FROM events").first?.decode(Int64.self) ?? 0
    }
}
