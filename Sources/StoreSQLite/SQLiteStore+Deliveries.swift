import Foundation
import GRDB
import ChatBridgeCore
import Detect
import Store

// The outbox side of the store: what the dispatcher reads and records, and the delivery
// log of `chatbridge deliveries` / `chatbridge replay`.

extension SQLiteStore: DeliveryQueue {
    /// How many rows at the front of a sink's queue ``dueDeliveries(sink:now:excluding:limit:)``
    /// looks at before it asks the due-time index instead.
    static let queueFrontWindow = 1024

    /// Pending rows of `sink` due at `now`, oldest first, at most `limit`; a row waits
    /// while an older row of the same sink and chat is pending (that one may be in flight
    /// or retrying). A digest's row comes with the digest's JSON as its event, and the
    /// digest is sealed: a later match opens a new one.
    ///
    /// Cost does not grow with the queue: it reads the front of the queue in id order
    /// (`deliveries_queue`, which covers chat and due time), at most
    /// ``queueFrontWindow`` entries, where the first row of each chat heads that chat.
    /// Only when that window is full and yields too few due rows (the front is waiting
    /// for retries) does it ask the due-time index (`deliveries_due`) with a per-row
    /// "older pending row of this chat" check (`deliveries_by_key`). Payloads are read by
    /// id for the chosen rows only.
    package func dueDeliveries(sink: String, now: Date, excluding inFlight: Set<Int64>, limit: Int) async throws -> [DueDelivery] {
        guard limit > 0 else { return [] }
        let window = Self.queueFrontWindow
        let nowValue = now.storeValue
        let (rows, digestIDs) = try await pool.read { db -> ([DueDelivery], [Int64]) in
            var chosen: [Int64] = []
            var seenChats: Set<String> = []
            var scanned = 0
            let front = try Row.fetchCursor(db, sql: """
                SELECT id, ordering_key, next_attempt_at FROM deliveries INDEXED BY deliveries_queue
                WHERE sink = ? AND status = 'pending' ORDER BY id LIMIT ?
                """, arguments: [sink, window])
            while let row = try front.next(), chosen.count < limit {
                scanned += 1
                let id: Int64 = row[0]
                let orderingKey: String = row[1]
                // The first pending row of a chat in id order heads it; the rest wait.
                guard seenChats.insert(orderingKey).inserted else { continue }
                let due: Double = row[2]
                if due <= nowValue, !inFlight.contains(id) { chosen.append(id) }
            }
            if chosen.count < limit, scanned >= window {
                chosen = try Self.dueByTime(db, sink: sink, now: nowValue, excluding: inFlight, limit: limit)
            }
            guard !chosen.isEmpty else { return ([], []) }
            let placeholders = Array(repeating: "?", count: chosen.count).joined(separator: ",")
            var digestIDs: [Int64] = []
            let rows = try Row.fetchAll(db, sql: """
                SELECT d.id, d.event_id, d.rule, d.sink, d.attempts, d.digest_id, COALESCE(e.json, ''), e.occurred_at
                FROM deliveries d LEFT JOIN events e ON e.id = d.event_id
                WHERE d.id IN (\(placeholders)) ORDER BY d.id
                """, arguments: StatementArguments(chosen)).map { row -> DueDelivery in
                let digestID: Int64? = row[5]
                if let digestID { digestIDs.append(digestID) }
                return DueDelivery(
                    id: row[0], eventID: row[1], rule: row[2], sink: row[3], attempts: row[4], eventJSON: row[6],
                    digestID: digestID, occurredAt: (row[7] as Double?).map(Date.init(storeValue:)))
            }
            return (rows, digestIDs)
        }
        guard !digestIDs.isEmpty else { return rows }
        let digests = try await sealDigests(digestIDs)
        return rows.map { row in
            guard let digestID = row.digestID, let digest = digests[digestID] else { return row }
            var row = row
            row.eventJSON = Self.digestJSON(id: row.eventID, rule: digest.rule, events: digest.events)
            return row
        }
    }

    /// Due rows by the due-time index, for when the front of the queue is all waiting.
    private static func dueByTime(
        _ db: Database, sink: String, now: Double, excluding inFlight: Set<Int64>, limit: Int
    ) throws -> [Int64] {
        let excluded = inFlight.sorted()
        let placeholders = excluded.isEmpty
            ? "" : "AND d.id NOT IN (\(Array(repeating: "?", count: excluded.count).joined(separator: ",")))"
        var arguments: [(any DatabaseValueConvertible)?] = [sink, now]
        arguments.append(contentsOf: excluded.map { $0 as (any DatabaseValueConvertible)? })
        arguments.append(limit)
        return try Int64.fetchAll(db, sql: """
            SELECT d.id FROM deliveries d INDEXED BY deliveries_due
            WHERE d.sink = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
              \(placeholders)
              AND NOT EXISTS (
                SELECT 1 FROM deliveries o INDEXED BY deliveries_by_key
                WHERE o.sink = d.sink AND o.ordering_key = d.ordering_key AND o.status = 'pending' AND o.id < d.id)
            ORDER BY d.id
            LIMIT ?
            """, arguments: StatementArguments(arguments))
    }

    /// Seals digests and returns each one's rule and events, in detection order, as
    /// stored (without `rule`). Sealing and reading happen in one write transaction, so a poll either
    /// added its match before (it is in the digest) or sees the digest sealed and opens
    /// a new one: no match is lost between the two.
    private func sealDigests(_ ids: [Int64]) async throws -> [Int64: (rule: String, events: [String])] {
        try await pool.write { db in
            var result: [Int64: (rule: String, events: [String])] = [:]
            for id in ids {
                try db.execute(sql: "UPDATE digests SET sealed = 1 WHERE id = ?", arguments: [id])
                let rule = try String.fetchOne(db, sql: "SELECT rule FROM digests WHERE id = ?", arguments: [id]) ?? ""
                let events = try String.fetchAll(db, sql: """
                    SELECT e.json FROM digest_events de JOIN events e ON e.id = de.event_id
                    WHERE de.digest_id = ? ORDER BY e.seq
                    """, arguments: [id])
                result[id] = (rule, events)
            }
            return result
        }
    }

    /// The JSON text of a digest, `{"id", "type": "digest", "rule", "count", "events"}`,
    /// from the stored events' JSON texts (not parsed again). Its `id` is the UUIDv7 its
    /// delivery row was given when the digest opened: unique across stores, the same on
    /// every retry and replay, so its `webhook-id` (`ID.RULE.SINK`) is too.
    static func digestJSON(id: String, rule: String, events: [String]) -> String {
        "{\"id\":\(JSONValue.string(id).compactString),\"type\":\"digest\","
            + "\"rule\":\(JSONValue.string(rule).compactString),\"count\":\(events.count),"
            + "\"events\":[\(events.joined(separator: ","))]}"
    }

    /// When the earliest pending row of `sink` that heads its chat's queue falls due. A
    /// row behind an older pending row of the same chat is not counted: it cannot be
    /// attempted before that one, whatever its own time says. The head of a chat that
    /// is in flight counts (its time has come), so the answer can be in the past.
    package func nextAttemptDate(sink: String) async throws -> Date? {
        try await pool.read { db in
            try Double.fetchOne(db, sql: """
                SELECT d.next_attempt_at FROM deliveries d INDEXED BY deliveries_due
                WHERE d.sink = ? AND d.status = 'pending'
                  AND NOT EXISTS (
                    SELECT 1 FROM deliveries o INDEXED BY deliveries_by_key
                    WHERE o.sink = d.sink AND o.ordering_key = d.ordering_key AND o.status = 'pending' AND o.id < d.id)
                ORDER BY d.next_attempt_at
                LIMIT 1
                """, arguments: [sink]).map(Date.init(storeValue:))
        }
    }

    /// Records updates in one short transaction. A row that is no longer pending
    /// (finished by another process meanwhile) is left alone.
    package func record(_ updates: [DeliveryUpdate]) async throws {
        guard !updates.isEmpty else { return }
        try await pool.write { db in
            let delivered = try db.cachedStatement(sql: """
                UPDATE deliveries
                SET status = 'delivered', attempts = ?, last_status = ?, last_error = NULL,
                    delivered_at = ?, finished_at = ?
                WHERE id = ? AND status = 'pending'
                """)
            let retry = try db.cachedStatement(sql: """
                UPDATE deliveries
                SET attempts = ?, next_attempt_at = ?, last_status = ?, last_error = ?
                WHERE id = ? AND status = 'pending'
                """)
            let dead = try db.cachedStatement(sql: """
                UPDATE deliveries
                SET status = 'dead', attempts = ?, last_status = ?, last_error = ?, finished_at = ?
                WHERE id = ? AND status = 'pending'
                """)
            let postpone = try db.cachedStatement(sql: """
                UPDATE deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending'
                """)
            for update in updates {
                let id = update.deliveryID
                let date = update.at.storeValue
                switch update.change {
                case .attempted(.delivered(let status), let attempts):
                    try delivered.execute(arguments: [attempts, status, date, date, id])
                case .attempted(.retry(let notBefore, let status, let error), let attempts):
                    try retry.execute(arguments: [attempts, notBefore.storeValue, status, Self.keptError(error), id])
                case .attempted(.dead(let status, let error), let attempts):
                    try dead.execute(arguments: [attempts, status, Self.keptError(error), date, id])
                case .postponed(let until):
                    try postpone.execute(arguments: [until.storeValue, id])
                }
            }
        }
    }

    /// The stored form of an error: its first 1 KiB, cut at a character boundary.
    static func keptError(_ error: String) -> String {
        TextLimit.prefix(error, maxUTF8Bytes: 1024)
    }
}

extension SQLiteStore {
    /// The delivery log, filtered: the most recent `limit` rows (all when `nil`), oldest
    /// first.
    package func deliveries(status: String? = nil, sink: String? = nil, eventID: String? = nil, limit: Int? = nil) async throws -> [DeliveryRecord] {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let status {
            conditions.append("status = ?")
            arguments.append(status)
        }
        if let sink {
            conditions.append("sink = ?")
            arguments.append(sink)
        }
        if let eventID {
            conditions.append("event_id = ?")
            arguments.append(eventID)
        }
        var sql = """
            SELECT id, event_id, rule, sink, status, attempts, last_status, last_error, next_attempt_at, delivered_at
            FROM deliveries
            """
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY id DESC"
        if let limit {
            sql += " LIMIT ?"
            arguments.append(max(0, limit))
        }
        let statementArguments = StatementArguments(arguments)
        let query = sql
        let records = try await pool.read { db in
            try Row.fetchAll(db, sql: query, arguments: statementArguments).map { row -> DeliveryRecord in
                let status: String = row["status"]
                let nextAttempt: Double? = row["next_attempt_at"]
                let deliveredAt: Double? = row["delivered_at"]
                return DeliveryRecord(
                    id: row["id"], eventID: row["event_id"], rule: row["rule"], sink: row["sink"], status: status,
                    attempts: row["attempts"], lastStatus: row["last_status"], lastError: row["last_error"],
                    nextAttemptAt: status == "pending" ? nextAttempt.map(Date.init(storeValue:)) : nil,
                    deliveredAt: deliveredAt.map(Date.init(storeValue:)))
            }
        }
        return records.reversed()
    }

    /// Queues a stored event again (`chatbridge replay`): for each of its deliveries (only
    /// those of `sink`, when given), a finished one (delivered or dead) gets a new pending
    /// row due `now`, and its own row stays as it was, so that `chatbridge deliveries
    /// --event ID` shows the earlier attempts too; a pending one is made due `now`. The
    /// event id stays the same, and so does each delivery's `webhook-id`
    /// (`EVENT.RULE.SINK`).
    ///
    /// When `sink` is given and the event has no row for it, one is created with no rule
    /// (not for a digest: its rows are its sinks).
    ///
    /// - Returns: the number of rows queued (0 when the event has no delivery rows and no
    ///   sink was named).
    /// - Throws: ``ReplayError`` when no stored event has this id.
    package func replay(eventID: String, sink: String? = nil, now: Date = Date()) async throws -> Int {
        try await pool.write { db in
            let event = try Row.fetchOne(db, sql: "SELECT source, chat_id FROM events WHERE id = ?", arguments: [eventID])
            // A digest's row (its own UUIDv7 id) has no event of its own; it goes out again with
            // the same events, as it was sealed.
            let isDigest = try event == nil && Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM deliveries WHERE event_id = ? AND digest_id IS NOT NULL)
                """, arguments: [eventID]) == true
            guard event != nil || isDigest else { throw ReplayError(eventID: eventID) }
            let sinkCondition = sink == nil ? "" : " AND sink = ?"
            let sinkArgument: [(any DatabaseValueConvertible)?] = sink.map { [$0] } ?? []
            // Pending deliveries: due now.
            try db.execute(
                sql: "UPDATE deliveries SET next_attempt_at = ? WHERE event_id = ? AND status = 'pending'" + sinkCondition,
                arguments: StatementArguments([now.storeValue, eventID] + sinkArgument))
            var changed = db.changesCount
            // Finished ones: a new row after the latest of each (rule, sink), history kept.
            try db.execute(
                sql: """
                    INSERT INTO deliveries
                        (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at, digest_id)
                    SELECT event_id, rule, sink, ordering_key, 'pending', 0, ?, ?, digest_id FROM deliveries AS d
                    WHERE event_id = ? AND status <> 'pending'\(sinkCondition)
                      AND d.id = (SELECT MAX(x.id) FROM deliveries AS x
                                  WHERE x.event_id = d.event_id AND x.sink = d.sink AND x.rule IS d.rule)
                    ORDER BY id
                    """,
                arguments: StatementArguments([now.storeValue, now.storeValue, eventID] + sinkArgument))
            changed += db.changesCount
            guard changed == 0, let sink, let event else { return changed }
            // No row for this sink yet: make one, in the chat's queue like the event's others.
            let existingKey = try String.fetchOne(
                db, sql: "SELECT ordering_key FROM deliveries WHERE event_id = ? LIMIT 1", arguments: [eventID])
            let source: String = event["source"]
            let chatID: String? = event["chat_id"]
            let orderingKey = existingKey ?? chatID.map { OrderingKey.chat(source: source, chatID: $0) } ?? OrderingKey.account(source: source)
            try db.execute(sql: """
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at)
                VALUES (?, NULL, ?, ?, 'pending', 0, ?, ?)
                """, arguments: [eventID, sink, orderingKey, now.storeValue, now.storeValue])
            return 1
        }
    }

    /// The `ordering_key` of a delivery, as the poll's transaction writes it: `source/chat_id`,
    /// or the source alone for an account event.
    static func chatKey(source: String, chatID: String?) -> String {
        chatID.map { "\(source)/\($0)" } ?? source
    }
}
