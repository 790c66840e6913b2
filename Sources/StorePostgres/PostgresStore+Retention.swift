import ChatBridgeCore
import Foundation
import Logging
import PostgresNIO
import Store

extension PostgresStore {
    /// Deletes what is older than `cutoff`, as SQLite's prune does, in short transactions
    /// of at most `batchSize` rows. One instance at a time prunes: the `retention` job row
    /// is taken for the length of the prune (by a lease that runs out, should the
    /// instance die); an instance that finds it taken prunes nothing this time.
    /// `checkpoint` means nothing here (PostgreSQL has no write-ahead log to truncate by hand).
    package func prune(olderThan cutoff: Date, now: Date, batchSize: Int, checkpoint: Bool) async throws -> PruneResult {
        var result = PruneResult()
        guard try await takeJob("retention", for: .seconds(600)) else { return result }
        let limit = max(1, batchSize)
        func batches(_ statement: @escaping @Sendable () -> PostgresQuery) async throws -> (deleted: Int, batches: Int) {
            var total = (deleted: 0, batches: 0)
            while true {
                try Task.checkCancellation()
                let deleted = try await transaction { [self] connection in
                    Int(try await connection.integer(statement(), logger: logger) ?? 0)
                }
                total.deleted += deleted
                total.batches += 1
                if deleted < limit { return total }
            }
        }
        for status in ["delivered", "dead"] {
            let pass = try await batches {
                """
                WITH gone AS (
                    DELETE FROM deliveries WHERE id IN (
                        SELECT id FROM deliveries WHERE status = \(status) AND finished_at < \(cutoff) LIMIT \(limit))
                    RETURNING 1)
                SELECT count(*)::BIGINT FROM gone
                """
            }
            result.deliveries += pass.deleted
            result.batches += pass.batches
        }
        // Events without a delivery row, walking the time index with a cursor.
        var cursor: (Date, Int64)? = nil
        while true {
            try Task.checkCancellation()
            let position = cursor
            let (deleted, last, scanned) = try await transaction { [self] connection -> (Int, (Date, Int64)?, Int) in
                let rows = try await connection.rows("""
                    SELECT e.seq, e.occurred_at, EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                    FROM events e
                    WHERE e.occurred_at < \(cutoff)
                      AND (\(position?.0)::TIMESTAMPTZ IS NULL OR (e.occurred_at, e.seq) > (\(position?.0), \(position?.1)))
                    ORDER BY e.occurred_at, e.seq
                    LIMIT \(limit)
                    """, logger: logger)
                var unreferenced: [Int64] = []
                var last: (Date, Int64)?
                for row in rows {
                    let (seq, occurredAt, referenced) = try row.decode((Int64, Date, Bool).self)
                    if !referenced { unreferenced.append(seq) }
                    last = (occurredAt, seq)
                }
                var deleted = 0
                if !unreferenced.isEmpty {
                    deleted = Int(try await connection.integer("""
                        WITH gone AS (DELETE FROM events WHERE seq = ANY(\(unreferenced)) RETURNING 1)
                        SELECT count(*)::BIGINT FROM gone
                        """, logger: logger) ?? 0)
                }
                return (deleted, last, rows.count)
            }
            result.events += deleted
            result.batches += 1
            guard scanned == limit, let last else { break }
            cursor = last
        }
        let polls = try await batches {
            """
            WITH gone AS (
                DELETE FROM polls WHERE id IN (SELECT id FROM polls WHERE finished_at < \(cutoff) ORDER BY id LIMIT \(limit))
                RETURNING 1)
            SELECT count(*)::BIGINT FROM gone
            """
        }
        result.polls += polls.deleted
        result.batches += polls.batches
        let throttles = try await batches {
            """
            WITH gone AS (
                DELETE FROM throttles WHERE (rule, ordering_key) IN (
                    SELECT rule, ordering_key FROM throttles WHERE until < \(now) LIMIT \(limit))
                RETURNING 1)
            SELECT count(*)::BIGINT FROM gone
            """
        }
        result.throttles += throttles.deleted
        result.batches += throttles.batches
        try await releaseJob("retention")
        return result
    }

    /// Takes a job that one instance at a time runs, for at most `duration`.
    func takeJob(_ name: String, for duration: Duration) async throws -> Bool {
        try await transaction { [self] connection in
            !(try await connection.rows("""
                INSERT INTO jobs AS j (name, token, expires_at)
                VALUES (\(name), \(token), clock_timestamp() + \(Self.interval(duration))::interval)
                ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at
                WHERE j.token = excluded.token OR j.expires_at < clock_timestamp()
                RETURNING 1
                """, logger: logger)).isEmpty
        }
    }

    func releaseJob(_ name: String) async throws {
        try await transaction { [self] connection in
            try await connection.run("DELETE FROM jobs WHERE name = \(name) AND token = \(token)", logger: logger)
        }
    }

    // MARK: Health

    /// Proves that the database takes a write now (a tiny upsert in `meta`), waiting at
    /// most `timeout`.
    ///
    /// - Throws: ``StoreNotWritable`` with the reason (never the password).
    package func checkWritable(timeout: Duration, now: Date = Date()) async throws(StoreNotWritable) {
        let answered: Bool
        do {
            answered = try await withTimeout(timeout) {
                try await self.transaction { [self] connection in
                    try await connection.run("""
                        INSERT INTO meta (key, value) VALUES ('health_checked_at', \(Timestamp.iso8601(now)))
                        ON CONFLICT (key) DO UPDATE SET value = excluded.value
                        """, logger: self.logger)
                }
                return true
            } ?? false
        } catch {
            throw StoreNotWritable(reason: Self.reason(error))
        }
        guard answered else { throw StoreNotWritable(reason: "the database did not answer within \(timeout)") }
    }
}
