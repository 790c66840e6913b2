import ChatBridgeCore
import Detect
import Foundation
import Logging
import PostgresNIO
import Store

extension PostgresStore {
    /// How many rows at the front of a sink's queue a fetch looks at for heads of keys
    /// before it asks the due-time index instead (as SQLite's store does).
    static let queueFrontWindow = 1024

    /// The `event_id` of a digest's delivery row (as in SQLite): `digest-ID`.
    static func digestEventID(_ digestID: Int64) -> String { "digest-\(digestID)" }

    /// Claims and returns the pending rows of `sink` due at `now`, oldest first, at most
    /// `limit`.
    ///
    /// A row can be claimed only when it heads its (sink, ordering key): no older row of
    /// that key is pending. Its claim (`claimed_by`, `claimed_until` by the database
    /// clock) keeps every other instance off it until the outcome is recorded or the claim
    /// expires (the instance died: then any instance attempts it again, same
    /// `webhook-id`). Rows another transaction is claiming right now are skipped
    /// (`FOR UPDATE SKIP LOCKED`), so instances never wait for each other here. Since only
    /// the head of a key is ever claimable, at most one row per chat and sink is in flight
    /// across all instances.
    package func dueDeliveries(
        sink: String, now: Date, excluding inFlight: Set<Int64>, limit: Int
    ) async throws -> [DueDelivery] {
        guard limit > 0 else { return [] }
        let excluded = Array(inFlight)
        let claimInterval = Self.interval(claimDuration)
        let window = Self.queueFrontWindow
        let (rows, digestIDs) = try await transaction { [self] connection -> ([DueDelivery], [Int64]) in
            // The front of the sink's queue in id order, where the first row of each key
            // heads it: no older pending row of that key can lie outside the front.
            var claimed = try await connection.rows("""
                WITH front AS (
                    SELECT id, next_attempt_at, claimed_until, claimed_by,
                           row_number() OVER (PARTITION BY ordering_key ORDER BY id) AS place
                    FROM (SELECT id, ordering_key, next_attempt_at, claimed_until, claimed_by FROM deliveries
                          WHERE sink = \(sink) AND status = 'pending' ORDER BY id LIMIT \(window)) queue
                ), candidates AS (
                    SELECT d.id FROM deliveries d JOIN front f ON f.id = d.id
                    WHERE f.place = 1 AND f.next_attempt_at <= \(now)
                      AND (f.claimed_until IS NULL OR f.claimed_until < clock_timestamp() OR f.claimed_by = \(token))
                      AND NOT (d.id = ANY(\(excluded)))
                    ORDER BY d.id
                    LIMIT \(limit)
                    FOR UPDATE OF d SKIP LOCKED
                )
                UPDATE deliveries SET claimed_by = \(token), claimed_until = clock_timestamp() + \(claimInterval)::interval
                FROM candidates WHERE deliveries.id = candidates.id
                RETURNING deliveries.id
                """, logger: logger)
            let frontIsFull = { () async throws -> Bool in
                try await connection.integer("""
                    SELECT count(*)::BIGINT FROM (
                        SELECT 1 FROM deliveries WHERE sink = \(sink) AND status = 'pending' LIMIT \(window)) queue
                    """, logger: self.logger) ?? 0 >= Int64(window)
            }
            if claimed.count < limit, try await frontIsFull() {
                // The front is all waiting (retries, quiet hours, other instances' claims):
                // due rows by time, each checked for an older pending row of its key.
                claimed += try await connection.rows("""
                    WITH candidates AS (
                        SELECT d.id FROM deliveries d
                        WHERE d.sink = \(sink) AND d.status = 'pending' AND d.next_attempt_at <= \(now)
                          AND (d.claimed_until IS NULL OR d.claimed_until < clock_timestamp())
                          AND NOT (d.id = ANY(\(excluded)))
                          AND NOT EXISTS (
                            SELECT 1 FROM deliveries o
                            WHERE o.sink = d.sink AND o.ordering_key = d.ordering_key AND o.status = 'pending' AND o.id < d.id)
                        ORDER BY d.next_attempt_at, d.id
                        LIMIT \(limit - claimed.count)
                        FOR UPDATE OF d SKIP LOCKED
                    )
                    UPDATE deliveries SET claimed_by = \(token), claimed_until = clock_timestamp() + \(claimInterval)::interval
                    FROM candidates WHERE deliveries.id = candidates.id
                    RETURNING deliveries.id
                    """, logger: logger)
            }
            let ids = Array(Set(try claimed.map { try $0.decode(Int64.self) })).sorted()
            guard !ids.isEmpty else { return ([], []) }
            var digestIDs: [Int64] = []
            let rows = try await connection.rows("""
                SELECT d.id, d.event_id, d.rule, d.sink, d.attempts, d.digest_id, COALESCE(e.json, ''), e.occurred_at
                FROM deliveries d LEFT JOIN events e ON e.id = d.event_id
                WHERE d.id = ANY(\(ids)) ORDER BY d.id
                """, logger: logger).map { row -> DueDelivery in
                let (id, eventID, rule, sink, attempts, digestID, json, occurredAt) =
                    try row.decode((Int64, String, String?, String, Int, Int64?, String, Date?).self)
                if let digestID { digestIDs.append(digestID) }
                return DueDelivery(
                    id: id, eventID: eventID, rule: rule, sink: sink, attempts: attempts, eventJSON: json, digestID: digestID,
                    occurredAt: occurredAt)
            }
            return (rows, digestIDs)
        }
        guard !digestIDs.isEmpty else { return rows }
        let digests = try await sealDigests(digestIDs)
        return rows.map { row in
            guard let digestID = row.digestID, let json = digests[digestID] else { return row }
            var row = row
            row.eventJSON = json
            return row
        }
    }

    /// Seals digests and returns each one's JSON, as SQLite does. The digest row is
    /// locked first: a poll adding a match holds it `FOR SHARE` until it commits, so the
    /// events read here include every match of a poll that saw the digest open.
    private func sealDigests(_ ids: [Int64]) async throws -> [Int64: String] {
        try await transaction { [self] connection in
            var result: [Int64: String] = [:]
            for id in ids {
                let rule = try await connection.rows(
                    "UPDATE digests SET sealed = TRUE WHERE id = \(id) RETURNING rule", logger: logger
                ).first?.decode(String.self) ?? ""
                let events = try await connection.rows("""
                    SELECT e.json FROM digest_events de JOIN events e ON e.id = de.event_id
                    WHERE de.digest_id = \(id) ORDER BY e.seq
                    """, logger: logger).map { try $0.decode(String.self) }
                result[id] = Self.digestJSON(rule: rule, events: events)
            }
            return result
        }
    }

    static func digestJSON(rule: String, events: [String]) -> String {
        "{\"type\":\"digest\",\"rule\":\(JSONValue.string(rule).compactString),\"count\":\(events.count),"
            + "\"events\":[\(events.joined(separator: ","))]}"
    }

    /// When the earliest pending row of `sink` that heads its key falls due; a head
    /// another instance has claimed counts from when its claim runs out.
    package func nextAttemptDate(sink: String) async throws -> Date? {
        try await rows("""
            SELECT min(CASE WHEN claimed_by IS NOT NULL AND claimed_by <> \(token) AND claimed_until > clock_timestamp()
                            THEN greatest(next_attempt_at, claimed_until) ELSE next_attempt_at END)
            FROM (SELECT DISTINCT ON (ordering_key) next_attempt_at, claimed_by, claimed_until FROM deliveries
                  WHERE sink = \(sink) AND status = 'pending' ORDER BY ordering_key, id) heads
            """).first?.decode(Date?.self)
    }

    /// Records outcomes in one short transaction and lets go of the rows' claims. A row
    /// no longer pending (finished by another instance) is left alone.
    package func record(_ updates: [DeliveryUpdate]) async throws {
        guard !updates.isEmpty else { return }
        try await transaction { [self] connection in
            for update in updates {
                let id = update.deliveryID
                let date = update.at
                switch update.change {
                case .attempted(.delivered(let status), let attempts):
                    try await connection.run("""
                        UPDATE deliveries
                        SET status = 'delivered', attempts = \(attempts), last_status = \(status), last_error = NULL,
                            delivered_at = \(date), finished_at = \(date), claimed_by = NULL, claimed_until = NULL
                        WHERE id = \(id) AND status = 'pending'
                        """, logger: logger)
                case .attempted(.retry(let notBefore, let status, let error), let attempts):
                    try await connection.run("""
                        UPDATE deliveries
                        SET attempts = \(attempts), next_attempt_at = \(notBefore), last_status = \(status),
                            last_error = \(Self.keptError(error)), claimed_by = NULL, claimed_until = NULL
                        WHERE id = \(id) AND status = 'pending'
                        """, logger: logger)
                case .attempted(.dead(let status, let error), let attempts):
                    try await connection.run("""
                        UPDATE deliveries
                        SET status = 'dead', attempts = \(attempts), last_status = \(status),
                            last_error = \(Self.keptError(error)), finished_at = \(date), claimed_by = NULL, claimed_until = NULL
                        WHERE id = \(id) AND status = 'pending'
                        """, logger: logger)
                case .postponed(let until):
                    try await connection.run("""
                        UPDATE deliveries SET next_attempt_at = \(until), claimed_by = NULL, claimed_until = NULL
                        WHERE id = \(id) AND status = 'pending'
                        """, logger: logger)
                }
            }
        }
    }

    static func keptError(_ error: String) -> String {
        TextLimit.prefix(error, maxUTF8Bytes: 1024)
    }

    // MARK: The delivery log

    package func deliveries(status: String?, sink: String?, eventID: String?, limit: Int?) async throws -> [DeliveryRecord] {
        let rows = try await rows("""
            SELECT id, event_id, rule, sink, status, attempts, last_status, last_error, next_attempt_at, delivered_at
            FROM deliveries
            WHERE (\(status)::TEXT IS NULL OR status = \(status))
              AND (\(sink)::TEXT IS NULL OR sink = \(sink))
              AND (\(eventID)::TEXT IS NULL OR event_id = \(eventID))
            ORDER BY id DESC
            LIMIT \(limit.map { max(0, $0) })
            """)
        let records = try rows.map { row -> DeliveryRecord in
            let (id, eventID, rule, sink, status, attempts, lastStatus, lastError, nextAttempt, deliveredAt) =
                try row.decode((Int64, String, String?, String, String, Int, Int?, String?, Date?, Date?).self)
            return DeliveryRecord(
                id: id, eventID: eventID, rule: rule, sink: sink, status: status, attempts: attempts,
                lastStatus: lastStatus, lastError: lastError, nextAttemptAt: status == "pending" ? nextAttempt : nil,
                deliveredAt: deliveredAt)
        }
        return records.reversed()
    }

    package func replay(eventID: String, sink: String?, now: Date) async throws -> Int {
        try await transaction { [self] connection in
            let event = try await connection.rows(
                "SELECT source, chat_id FROM events WHERE id = \(eventID)", logger: logger
            ).first.map { try $0.decode((String, String?).self) }
            var isDigest = false
            if event == nil {
                isDigest = try await connection.integer("""
                    SELECT count(*)::BIGINT FROM deliveries WHERE event_id = \(eventID) AND digest_id IS NOT NULL
                    """, logger: logger) ?? 0 > 0
            }
            guard event != nil || isDigest else { throw ReplayError(eventID: eventID) }
            let changed = try await connection.integer("""
                WITH changed AS (
                    UPDATE deliveries
                    SET status = 'pending', attempts = 0, next_attempt_at = \(now), last_status = NULL, last_error = NULL,
                        delivered_at = NULL, finished_at = NULL, claimed_by = NULL, claimed_until = NULL
                    WHERE event_id = \(eventID) AND (\(sink)::TEXT IS NULL OR sink = \(sink))
                    RETURNING 1)
                SELECT count(*)::BIGINT FROM changed
                """, logger: logger) ?? 0
            guard changed == 0, let sink, let event else { return Int(changed) }
            let existingKey = try await connection.rows(
                "SELECT ordering_key FROM deliveries WHERE event_id = \(eventID) LIMIT 1", logger: logger
            ).first?.decode(String.self)
            let orderingKey = existingKey
                ?? event.1.map { OrderingKey.chat(source: event.0, chatID: $0) } ?? OrderingKey.account(source: event.0)
            try await connection.run("""
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at)
                VALUES (\(eventID), NULL, \(sink), \(orderingKey), 'pending', 0, \(now), \(now))
                """, logger: logger)
            return 1
        }
    }

    package func deliveryCounts(now: Date, recentSince: Date) async throws -> [String: SinkDeliveryCounts] {
        let rows = try await rows("""
            SELECT sink, status, count(*)::BIGINT,
                   count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= \(now))::BIGINT,
                   count(*) FILTER (WHERE status = 'dead' AND finished_at >= \(recentSince) AND NOT EXISTS (
                       -- Replayed and delivered since: nothing is left to attend to.
                       SELECT 1 FROM deliveries AS later
                       WHERE later.event_id = d.event_id AND later.sink = d.sink
                         AND later.rule IS NOT DISTINCT FROM d.rule AND later.id > d.id AND later.status = 'delivered'))::BIGINT,
                   min(created_at) FILTER (WHERE status = 'pending')
            FROM deliveries AS d GROUP BY sink, status
            """)
        var counts: [String: SinkDeliveryCounts] = [:]
        for row in rows {
            let (sink, status, n, due, recent, oldest) = try row.decode((String, String, Int64, Int64, Int64, Date?).self)
            var entry = counts[sink] ?? SinkDeliveryCounts()
            switch status {
            case "pending":
                entry.pending = Int(n)
                entry.due = Int(due)
                entry.oldestPendingAt = oldest
            case "dead":
                entry.dead = Int(n)
                entry.recentlyDead = Int(recent)
            case "delivered":
                entry.delivered = Int(n)
            default: break
            }
            counts[sink] = entry
        }
        return counts
    }
}
