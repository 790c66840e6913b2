import Foundation
import GRDB
import ChatBridgeCore
import Store

extension SQLiteStore {
    // MARK: Retention

    /// Deletes what is older than `cutoff` (store.md, "Retention"), in small batches.
    ///
    /// - finished deliveries (`delivered`, `dead`) whose `finished_at` is before `cutoff`;
    /// - events that occurred before `cutoff` and have no delivery row left: an event with
    ///   a pending delivery is kept (the dispatcher still needs its JSON), and so is one
    ///   whose deliveries finished recently, so that every row of `chatbridge deliveries`
    ///   can still be replayed; the event goes once its last delivery row has aged out;
    /// - `polls` rows that finished before `cutoff`;
    /// - throttle windows that ended before `now`.
    ///
    /// Each batch is a write transaction of its own that deletes at most `batchSize` rows
    /// by index, so a poll waiting to write waits for one short batch at most, never for
    /// the whole prune. Cancellation is honoured between batches (what was deleted stays
    /// deleted).
    ///
    /// Freed pages are reused by later writes, so the database file stays at its
    /// high-water mark instead of growing (the schema does not use `auto_vacuum`; turning
    /// it on would take a full `VACUUM`, which rewrites the whole file under the write
    /// lock: not worth it). With `checkpoint`, a prune that deleted rows ends with a
    /// `wal_checkpoint(TRUNCATE)`, so that the write-ahead log, which otherwise keeps the
    /// size of the largest transaction it ever held (a baseline of 100k chats), goes back
    /// to zero bytes. The checkpoint waits at most a quarter of a second for readers and
    /// is skipped when they are busy.
    ///
    /// ```swift
    /// let result = try await store.prune(olderThan: Date().addingTimeInterval(-30 * 86_400))
    /// logger.info("pruned \(result)")
    /// ```
    package func prune(
        olderThan cutoff: Date, now: Date = Date(), batchSize: Int = 500, checkpoint: Bool = true
    ) async throws -> PruneResult {
        let limit = max(1, batchSize)
        let cutoff = cutoff.storeValue
        var result = PruneResult()
        func count(_ pass: (deleted: Int, batches: Int), into field: WritableKeyPath<PruneResult, Int>) {
            result[keyPath: field] += pass.deleted
            result.batches += pass.batches
        }
        // Deliveries first: an event goes only once it has no delivery row left.
        for status in ["delivered", "dead"] {
            count(try await inBatches(from: ()) { db, _ in
                try Self.deleteFinishedDeliveries(db, status: status, before: cutoff, limit: limit)
            }, into: \.deliveries)
        }
        count(try await inBatches(from: EventCursor.start) { db, cursor in
            try Self.deleteUnreferencedEvents(db, before: cutoff, after: cursor, limit: limit)
        }, into: \.events)
        count(try await inBatches(from: Int64.min) { db, afterID in
            try Self.deleteOldPolls(db, before: cutoff, after: afterID, limit: limit)
        }, into: \.polls)
        count(try await inBatches(from: ()) { db, _ in
            try Self.deleteEndedThrottles(db, before: now.storeValue, limit: limit)
        }, into: \.throttles)

        if checkpoint, result.total > 0 {
            result.checkpointed = (try? await truncateWriteAheadLog()) ?? false
        }
        return result
    }

    /// Runs `batch` in write transactions of its own, each starting where the last one
    /// said, until one says it is done (`next` is `nil`): short transactions that polls
    /// and deliveries interleave with.
    private func inBatches<Position: Sendable>(
        from start: Position, _ batch: @escaping @Sendable (Database, Position) throws -> (deleted: Int, next: Position?)
    ) async throws -> (deleted: Int, batches: Int) {
        var position = start
        var total = (deleted: 0, batches: 0)
        while true {
            try Task.checkCancellation()
            let current = position
            let (deleted, next) = try await pool.write { db in try batch(db, current) }
            total.deleted += deleted
            total.batches += 1
            guard let next else { return total }
            position = next
        }
    }

    private static func deleteFinishedDeliveries(
        _ db: Database, status: String, before cutoff: Double, limit: Int
    ) throws -> (deleted: Int, next: Void?) {
        try db.execute(sql: """
            DELETE FROM deliveries WHERE id IN (
                SELECT id FROM deliveries WHERE status = ? AND finished_at < ? LIMIT ?)
            """, arguments: [status, cutoff, limit])
        let deleted = db.changesCount
        return (deleted, deleted < limit ? nil : ())
    }

    /// Where the walk of the events' time index stands.
    private struct EventCursor: Sendable {
        var occurredAt: Double
        var sequence: Int64
        static let start = EventCursor(occurredAt: -Double.greatestFiniteMagnitude, sequence: Int64.min)
    }

    /// Old events without a delivery row, walking the time index with a cursor, so that
    /// old events still waiting for a delivery are looked at once per prune, not once per batch.
    private static func deleteUnreferencedEvents(
        _ db: Database, before cutoff: Double, after cursor: EventCursor, limit: Int
    ) throws -> (deleted: Int, next: EventCursor?) {
        let rows = try Row.fetchAll(db, sql: """
            SELECT e.seq, e.occurred_at, EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
            FROM events e
            WHERE e.occurred_at < ? AND (e.occurred_at, e.seq) > (?, ?)
            ORDER BY e.occurred_at, e.seq
            LIMIT ?
            """, arguments: [cutoff, cursor.occurredAt, cursor.sequence, limit])
        let unreferenced: [Int64] = rows.compactMap { row in (row[2] as Bool) ? nil : row[0] }
        var deleted = 0
        if !unreferenced.isEmpty {
            let placeholders = Array(repeating: "?", count: unreferenced.count).joined(separator: ",")
            try db.execute(
                sql: "DELETE FROM events WHERE seq IN (\(placeholders))", arguments: StatementArguments(unreferenced))
            deleted = db.changesCount
        }
        guard rows.count == limit, let last = rows.last else { return (deleted, nil) }
        return (deleted, EventCursor(occurredAt: last[1], sequence: last[0]))
    }

    /// Poll rows are appended in time order: walk them by id and stop at the first that
    /// is recent enough to keep.
    private static func deleteOldPolls(
        _ db: Database, before cutoff: Double, after afterID: Int64, limit: Int
    ) throws -> (deleted: Int, next: Int64?) {
        let rows = try Row.fetchAll(
            db, sql: "SELECT id, finished_at FROM polls WHERE id > ? ORDER BY id LIMIT ?", arguments: [afterID, limit])
        let old = rows.prefix { ($0[1] as Double) < cutoff }.map { $0[0] as Int64 }
        guard let first = old.first, let last = old.last else { return (0, nil) }
        try db.execute(sql: "DELETE FROM polls WHERE id >= ? AND id <= ?", arguments: [first, last])
        let reachedRecent = old.count < rows.count || rows.count < limit
        return (db.changesCount, reachedRecent ? nil : last)
    }

    private static func deleteEndedThrottles(
        _ db: Database, before now: Double, limit: Int
    ) throws -> (deleted: Int, next: Void?) {
        try db.execute(sql: """
            DELETE FROM throttles WHERE rowid IN (SELECT rowid FROM throttles WHERE until < ? LIMIT ?)
            """, arguments: [now, limit])
        let deleted = db.changesCount
        return (deleted, deleted < limit ? nil : ())
    }

    /// Copies the write-ahead log into the database and truncates it to zero bytes.
    /// Waits at most 250 ms for readers (then leaves it to the next idle checkpoint,
    /// ``DeferredCheckpoints``).
    ///
    /// - Returns: `true` when the log was checkpointed completely and truncated.
    func truncateWriteAheadLog() async throws -> Bool {
        try await pool.writeWithoutTransaction { db in
            // The writer's usual busy timeout (seconds) would let busy readers hold up the
            // next poll's write for that long; this is housekeeping and can wait a run.
            let previous = try Int.fetchOne(db, sql: "PRAGMA busy_timeout") ?? 0
            try db.execute(sql: "PRAGMA busy_timeout = 250")
            defer { try? db.execute(sql: "PRAGMA busy_timeout = \(previous)") }
            do {
                let (logFrames, checkpointed) = try db.checkpoint(.truncate)
                return logFrames <= 0 || checkpointed == logFrames
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                return false
            }
        }
    }

    /// The sizes of the database file and its write-ahead log, in bytes (a missing file
    /// counts 0).
    package func fileSizes() -> (database: Int64, writeAheadLog: Int64) {
        func size(_ path: String) -> Int64 {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return (size(path), size(path + "-wal"))
    }

    // MARK: Health

    /// Proves that the database takes a write now: a tiny upsert in `meta` (a real
    /// commit, so a full disk or a read-only file shows), on a connection of its own so
    /// that the check never queues behind the daemon's own writes; it waits at most
    /// `timeout` for the write lock.
    ///
    /// - Throws: ``StoreNotWritable`` with SQLite's reason.
    package func checkWritable(timeout: Duration, now: Date = Date()) async throws(StoreNotWritable) {
        var configuration = Configuration()
        configuration.busyMode = .timeout(max(0.001, timeout.seconds))
        configuration.label = "chatbridge.health"
        // The probe's one-row commit must not copy the log into the database: the daemon's
        // writer leaves that to its idle moments (DeferredCheckpoints), so the log may hold
        // thousands of pages, and SQLite's automatic checkpoint would copy them here.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        // Opening would create an empty file where the database went missing.
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreNotWritable(reason: "the database file is missing")
        }
        do {
            let connection = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? connection.close() }
            try await connection.write { db in
                try db.execute(sql: """
                    INSERT INTO meta (key, value) VALUES ('health_checked_at', ?)
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, arguments: [Timestamp.iso8601(now)])
            }
        } catch {
            throw StoreNotWritable(reason: Self.reason(error))
        }
    }
}
