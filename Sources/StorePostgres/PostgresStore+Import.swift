import Foundation
import Logging
import NIOCore
import PostgresNIO
import Store

extension PostgresStore: StoreImporting {
    package func holdsNoData() async throws -> Bool {
        let count = try await rows("""
            SELECT (SELECT count(*) FROM sources) + (SELECT count(*) FROM chats) + (SELECT count(*) FROM events)
                 + (SELECT count(*) FROM deliveries)
            """).first?.decode(Int64.self) ?? 0
        return count == 0
    }

    package func eraseAll() async throws {
        try await transaction { [self] connection in
            try await connection.run("""
                TRUNCATE sources, leases, instances, jobs, chats, staging, polls, events, deliveries, digests,
                         digest_events, throttles RESTART IDENTITY
                """, logger: logger)
        }
    }

    /// Writes one batch of a copy in one transaction, keeping ids (event sequence numbers,
    /// digest and delivery ids) so that `webhook-id`s and digest rows stay the same.
    package func importBatch(_ batch: StoreCopyBatch) async throws {
        try await transaction { [self] connection in
            switch batch {
            case .fingerprintSeed(let seed):
                try await connection.run("""
                    UPDATE meta SET value = \(String(seed)) WHERE key = 'fingerprint_seed'
                    """, logger: logger)
            case .sources(let records):
                for record in records {
                    try await saveSourceRecord(record, on: connection)
                }
            case .chats(let chats):
                try await insert(on: connection, rows: chats, into: """
                    chats (source, chat_id, account_id, account_type, raw, fingerprint, missing, updated_at)
                    """) { chat, binds in
                    binds.append(chat.source)
                    binds.append(chat.id)
                    binds.append(chat.accountID)
                    binds.append(chat.accountType)
                    binds.append(ByteBuffer(data: chat.raw))
                    binds.append(chat.fingerprint)
                    binds.append(chat.missing)
                    binds.append(chat.updatedAt)
                }
            case .polls(let polls):
                try await insert(on: connection, rows: polls, into: """
                    polls (source, started_at, finished_at, outcome, error, pages, items, changed, events)
                    """) { poll, binds in
                    binds.append(poll.source)
                    binds.append(poll.startedAt)
                    binds.append(poll.finishedAt)
                    binds.append(poll.outcome)
                    binds.append(poll.error)
                    binds.append(poll.pages)
                    binds.append(poll.items)
                    binds.append(poll.changed)
                    binds.append(poll.events)
                }
            case .events(let events):
                try await insert(on: connection, rows: events, into: """
                    events (seq, id, type, kinds, source, chat_id, occurred_at, json)
                    """) { event, binds in
                    binds.append(event.sequence)
                    binds.append(event.id)
                    binds.append(event.type)
                    binds.append(event.kinds)
                    binds.append(event.source)
                    binds.append(event.chatID)
                    binds.append(event.occurredAt)
                    binds.append(event.json)
                }
            case .digests(let digests):
                try await insert(on: connection, rows: digests, into: "digests (id, rule, sink, opened_at, closes_at, sealed)") {
                    digest, binds in
                    binds.append(digest.id)
                    binds.append(digest.rule)
                    binds.append(digest.sink)
                    binds.append(digest.openedAt)
                    binds.append(digest.closesAt)
                    binds.append(digest.sealed)
                }
            case .digestEvents(let links):
                try await insert(on: connection, rows: links, into: "digest_events (digest_id, event_id)") { link, binds in
                    binds.append(link.digestID)
                    binds.append(link.eventID)
                }
            case .deliveries(let deliveries):
                try await insert(on: connection, rows: deliveries, into: """
                    deliveries (id, event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, last_status,
                                last_error, created_at, delivered_at, finished_at, digest_id)
                    """) { delivery, binds in
                    binds.append(delivery.id)
                    binds.append(delivery.eventID)
                    binds.append(delivery.rule)
                    binds.append(delivery.sink)
                    binds.append(delivery.orderingKey)
                    binds.append(delivery.status)
                    binds.append(delivery.attempts)
                    binds.append(delivery.nextAttemptAt)
                    binds.append(delivery.lastStatus)
                    binds.append(delivery.lastError)
                    binds.append(delivery.createdAt)
                    binds.append(delivery.deliveredAt)
                    binds.append(delivery.finishedAt)
                    binds.append(delivery.digestID)
                }
            case .throttles(let throttles):
                try await insert(on: connection, rows: throttles, into: "throttles (rule, ordering_key, until)") {
                    throttle, binds in
                    binds.append(throttle.rule)
                    binds.append(throttle.orderingKey)
                    binds.append(throttle.until)
                }
            }
        }
    }

    /// Multi-row inserts of `rows`, each row's values appended by `bind`; placeholders
    /// only in the SQL text.
    private func insert<Row>(
        on connection: PostgresConnection, rows: [Row], into table: String,
        bind: (Row, inout PostgresBindings) -> Void
    ) async throws {
        guard let first = rows.first else { return }
        var probe = PostgresBindings()
        bind(first, &probe)
        let width = probe.count
        let perStatement = max(1, 30_000 / width)
        for batch in rows.chunked(perStatement) {
            var query = PostgresQuery(unsafeSQL: "")
            var tuples: [String] = []
            for row in batch {
                let base = query.binds.count
                bind(row, &query.binds)
                tuples.append("(" + (1...width).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            }
            query.sql = "INSERT INTO \(table) VALUES \(tuples.joined(separator: ", "))"
            try await connection.run(query, logger: logger)
        }
    }

    /// Id sequences continue after the copied ids.
    package func finishImport() async throws {
        try await transaction { [self] connection in
            for (table, column) in [("events", "seq"), ("deliveries", "id"), ("digests", "id"), ("polls", "id"), ("chats", "seq")] {
                try await connection.run(PostgresQuery(unsafeSQL: """
                    SELECT setval(pg_get_serial_sequence('\(table)', '\(column)'),
                                  greatest((SELECT max(\(column)) FROM \(table)), 1))
                    """), logger: logger)
            }
        }
    }
}
