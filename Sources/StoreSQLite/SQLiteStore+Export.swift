import ChatBridgeCore
import Foundation
import GRDB
import Store

extension SQLiteStore: StoreExporting {
    /// Reads every table in batches of `batchSize` rows by key order (each batch a read
    /// transaction of its own, so a running daemon is never held up), for
    /// `chatbridge store copy`. Stop the daemon first for an exact copy: rows written
    /// after a table was read are not in it.
    package func export(batchSize: Int, into sink: (StoreCopyBatch) async throws -> Void) async throws {
        let limit = max(1, batchSize)
        try await sink(.fingerprintSeed(fingerprintSeed))
        let sources = try await sourceRecords()
        if !sources.isEmpty { try await sink(.sources(sources)) }

        try await pages(limit: limit, sql: """
            SELECT b.id, b.source, b.chat_id, b.account_id, b.account_type, b.raw, c.fingerprint, c.missing, b.updated_at
            FROM chat_bodies b JOIN chats c ON c.source = b.source AND c.chat_id = b.chat_id
            WHERE b.id > ? ORDER BY b.id LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.chats) { row in
            StoreCopyBatch.Chat(
                source: row[1], id: row[2], accountID: row[3], accountType: row[4], raw: row[5], fingerprint: row[6],
                missing: row[7], updatedAt: Date(storeValue: row[8]))
        }
        try await pages(limit: limit, sql: """
            SELECT id, source, started_at, finished_at, outcome, error, pages, items, changed, events
            FROM polls WHERE id > ? ORDER BY id LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.polls) { row in
            StoreCopyBatch.Poll(
                source: row[1], startedAt: Date(storeValue: row[2]), finishedAt: Date(storeValue: row[3]), outcome: row[4],
                error: row[5], pages: row[6], items: row[7], changed: row[8], events: row[9])
        }
        try await pages(limit: limit, sql: """
            SELECT seq, id, type, kinds, source, chat_id, occurred_at, json FROM events WHERE seq > ? ORDER BY seq LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.events) { row in
            StoreCopyBatch.Event(
                sequence: row[0], id: row[1], type: row[2], kinds: row[3], source: row[4], chatID: row[5],
                occurredAt: Date(storeValue: row[6]), json: row[7])
        }
        try await pages(limit: limit, sql: """
            SELECT id, rule, sink, opened_at, closes_at, sealed FROM digests WHERE id > ? ORDER BY id LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.digests) { row in
            StoreCopyBatch.Digest(
                id: row[0], rule: row[1], sink: row[2], openedAt: Date(storeValue: row[3]),
                closesAt: Date(storeValue: row[4]), sealed: row[5])
        }
        try await pages(limit: limit, sql: """
            SELECT rowid, digest_id, event_id FROM digest_events WHERE rowid > ? ORDER BY rowid LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.digestEvents) { row in
            StoreCopyBatch.DigestEvent(digestID: row[1], eventID: row[2])
        }
        try await pages(limit: limit, sql: """
            SELECT id, event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, last_status, last_error,
                   created_at, delivered_at, finished_at, digest_id
            FROM deliveries WHERE id > ? ORDER BY id LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.deliveries) { row in
            StoreCopyBatch.Delivery(
                id: row[0], eventID: row[1], rule: row[2], sink: row[3], orderingKey: row[4], status: row[5],
                attempts: row[6], nextAttemptAt: Date(storeValue: row[7]), lastStatus: row[8], lastError: row[9],
                createdAt: Date(storeValue: row[10]), deliveredAt: (row[11] as Double?).map(Date.init(storeValue:)),
                finishedAt: (row[12] as Double?).map(Date.init(storeValue:)), digestID: row[13])
        }
        try await pages(limit: limit, sql: """
            SELECT rowid, rule, ordering_key, until FROM throttles WHERE rowid > ? ORDER BY rowid LIMIT ?
            """, into: sink, wrap: StoreCopyBatch.throttles) { row in
            StoreCopyBatch.Throttle(rule: row[1], orderingKey: row[2], until: Date(storeValue: row[3]))
        }
    }

    /// Reads `sql` (`key > ? … LIMIT ?`, the key first) page by page, each page one batch.
    private func pages<Element: Sendable>(
        limit: Int, sql: String, into sink: (StoreCopyBatch) async throws -> Void,
        wrap: ([Element]) -> StoreCopyBatch, convert: @escaping @Sendable (Row) throws -> Element
    ) async throws {
        var after = Int64.min
        while true {
            let position = after
            let (elements, last) = try await pool.read { db -> ([Element], Int64) in
                let rows = try Row.fetchAll(db, sql: sql, arguments: [position, limit])
                return (try rows.map(convert), rows.last.map { $0[0] as Int64 } ?? position)
            }
            if !elements.isEmpty { try await sink(wrap(elements)) }
            if elements.count < limit { return }
            after = last
        }
    }
}
