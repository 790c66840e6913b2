import Foundation
import GRDB
import Synchronization
import ChatBridgeCore
import Store

/// The SQLite database that is chatbridge's only state (store.md).
///
/// WAL mode with `synchronous = NORMAL`: a killed process loses nothing that was
/// committed; a power loss can lose the last transactions (then the next poll detects
/// their changes again, because the snapshot went back with them). Readers
/// (`chatbridge events`, `status`, …) never block the daemon; writers wait on a busy
/// timeout.
///
/// ```swift
/// let store = try SQLiteStore(path: "state/chatbridge.sqlite")
/// let index = try await store.snapshotIndex(source: "main")
/// ```
package final class SQLiteStore: Sendable {
    package let path: String
    let pool: DatabasePool
    /// The key of chat fingerprints: random per database, so that whoever writes chat
    /// names cannot predict a fingerprint.
    package let fingerprintSeed: UInt64
    private let eventIDs = Mutex(EventIDGenerator())
    /// Checkpoints the write-ahead log when the writer is idle rather than inside commits.
    let checkpoints: DeferredCheckpoints
    /// The page cache of each reading connection, in KiB.
    static let readerCacheKiB = 256
    /// The page cache of the writing connection, in KiB (SQLite's default is 2 MB).
    ///
    /// The writer appends (a baseline's bodies, events, deliveries) or updates a few pages
    /// per changed chat scattered over the snapshot: pages it rarely reads again before
    /// they leave a cache of any size that fits the memory target. Measured at 100k chats:
    /// a baseline's peak RSS 50.1 → 48.3 MB, a 1%-changed poll's 52.3 → 51.2 MB, CPU
    /// unchanged within the noise.
    static let writerCacheKiB = 512
    /// The size the write-ahead log file is cut back to when it starts over after a
    /// checkpoint (`journal_size_limit`).
    static let logSizeLimitBytes = 64 << 20

    /// Opens (creating it and its folder when missing) and migrates the database.
    ///
    /// A new store's folder is made `0700` and its file `0600` (SQLite gives its `-wal`
    /// and `-shm` files the same mode): it holds chat content. A store that cannot be
    /// opened throws a ``StoreError`` that names the path and the cause, such as
    /// `cannot create state/chatbridge.sqlite: permission denied (folder state/ is read-only)`.
    ///
    /// - Parameters:
    ///   - synchronousFull: `PRAGMA synchronous = FULL` instead of `NORMAL`: survives a
    ///     power loss too, at the cost of an fsync per transaction.
    ///   - readOnly: for the commands that only read; creates nothing. A store written by
    ///     an earlier release is upgraded first all the same (its migrations are short).
    package convenience init(path: String, synchronousFull: Bool = false, readOnly: Bool = false) throws(StoreError) {
        try self.init(path: path, synchronousFull: synchronousFull, readOnly: readOnly, checkpoints: DeferredCheckpoints())
    }

    /// Opens the store as ``init(path:synchronousFull:readOnly:)`` does, with `checkpoints`
    /// deciding when the write-ahead log is copied into the database (tests set their own
    /// idle period).
    init(path: String, synchronousFull: Bool, readOnly: Bool, checkpoints: DeferredCheckpoints) throws(StoreError) {
        self.path = path
        if !readOnly { try Self.prepareFiles(path: path) }
        self.checkpoints = checkpoints
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.readonly = readOnly
        configuration.label = "chatbridge"
        configuration.prepareDatabase { db in
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = \(synchronousFull ? "FULL" : "NORMAL")")
                try db.execute(sql: "PRAGMA cache_size = -\(Self.writerCacheKiB)")
                // The log is checkpointed when the writer is idle; a burst can leave it at
                // tens of MB, which the next reset of the log gives back to the disk.
                try db.execute(sql: "PRAGMA journal_size_limit = \(Self.logSizeLimitBytes)")
                checkpoints.install(on: db)
            } else {
                // Readers mostly read a table once through (the snapshot's index at the
                // start of a run, a command's listing): a page cache of SQLite's default
                // 2 MB would only keep pages that are not read again.
                try db.execute(sql: "PRAGMA cache_size = -\(Self.readerCacheKiB)")
            }
        }
        do {
            var pool = try DatabasePool(path: path, configuration: configuration)
            if !readOnly {
                try Self.migrate(pool)
            } else if try !pool.read({ try Self.migrator.hasCompletedMigrations($0) }) {
                // A store written by an earlier release: upgraded once by a writer (which
                // waits for a running daemon's commit like any connection), then read.
                try pool.close()
                var writing = configuration
                writing.readonly = false
                let writer = try DatabasePool(path: path, configuration: writing)
                try Self.migrate(writer)
                try writer.close()
                pool = try DatabasePool(path: path, configuration: configuration)
            }
            self.pool = pool
            if !readOnly { checkpoints.attach(to: pool) }
            fingerprintSeed = try pool.read { db in
                guard let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'fingerprint_seed'"),
                      let seed = UInt64(text)
                else { throw StoreError(path: path, message: "not a chatbridge database (no fingerprint seed)") }
                return seed
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.openingError(path: path, error, readOnly: readOnly)
        }
    }

    /// Migrates `writer`; when that moved an earlier release's snapshot into the two
    /// snapshot tables (`v4`), compacts the file once: the copy leaves the old table's
    /// pages free, and the file would otherwise keep twice the snapshot's size.
    ///
    /// Two processes may migrate the same store at the same moment: a daemon creating
    /// its store while `chatbridge status` or `chats` opens it. GRDB reads which
    /// migrations are applied once, then runs each in a transaction of its own, so the
    /// slower process fails on a table the other one made (`table chat_bodies already
    /// exists`). Its failed migration rolled back whole; when the store has moved on
    /// since it looked, it starts again from what is applied now (a bounded number of
    /// times), instead of failing to start.
    private static func migrate(_ writer: DatabasePool) throws {
        let migrator = migrator
        // Each start over follows another process's progress: once per migration is enough.
        let attempts = migrator.migrations.count + 1
        for attempt in 1...attempts {
            // One read at every start-up; the rest only when a migration is pending.
            let (current, applied) = try writer.read { db in
                (try migrator.hasCompletedMigrations(db), try migrator.appliedIdentifiers(db))
            }
            guard !current else { return }
            // Whether this open moves chats of an earlier release (a new store has none).
            let movesChats = try !applied.isEmpty && !applied.contains(chatBodiesMigration) && writer.read { db in
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM chats)") ?? false
            }
            do {
                try migrator.migrate(writer)
            } catch {
                let now = try writer.read { db in try migrator.appliedIdentifiers(db) }
                guard now != applied, attempt < attempts else { throw error }
                continue
            }
            if movesChats { try writer.vacuum() }
            return
        }
    }

    package static func reason(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return "\(error.message ?? "SQLite error \(error.resultCode)")"
        }
        if let error = error as? CocoaError, let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError {
            return underlying.localizedDescription
        }
        return "\(error)"
    }

    /// Makes the next event id: UUIDv7, increasing across every transaction of this store.
    func nextEventID(now: Date) -> String {
        eventIDs.withLock { $0.next(now: now) }
    }

    // MARK: Schema

    /// The migration that split the snapshot into `chats` and `chat_bodies`.
    static let chatBodiesMigration = "v4: chat bodies"

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta (key, value) VALUES ('digest_seed', '\(UInt64.random(in: 1...UInt64.max))');

                -- One row per configured source: its baseline, filters and health.
                CREATE TABLE sources (
                    name TEXT PRIMARY KEY,
                    filter_fingerprint TEXT NOT NULL,
                    baseline_done INTEGER NOT NULL DEFAULT 0,
                    account_error TEXT,                 -- JSON of the outstanding account.error, NULL when healthy
                    consecutive_failures INTEGER NOT NULL DEFAULT 0,
                    suspicious_streak INTEGER NOT NULL DEFAULT 0,
                    last_poll_at REAL,
                    last_outcome TEXT,
                    last_error TEXT,
                    last_success_at REAL,
                    failing_since REAL
                );

                -- The last complete snapshot of each source.
                CREATE TABLE chats (
                    source TEXT NOT NULL,
                    chat_id TEXT NOT NULL,
                    account_id TEXT,
                    account_type TEXT,
                    raw BLOB NOT NULL,                  -- the item's bytes as the API sent them
                    digest INTEGER NOT NULL,            -- keyed XXH64 of raw
                    missing INTEGER NOT NULL DEFAULT 0, -- complete polls in a row without this chat
                    updated_at REAL NOT NULL
                );
                CREATE UNIQUE INDEX chats_by_source ON chats (source, chat_id);
                -- Covers the digest index a poll loads, so that it never reads the raw blobs.
                CREATE INDEX chats_digests ON chats (source, chat_id, digest, missing);

                CREATE TABLE polls (
                    id INTEGER PRIMARY KEY,
                    source TEXT NOT NULL,
                    started_at REAL NOT NULL,
                    finished_at REAL NOT NULL,
                    outcome TEXT NOT NULL,              -- complete | baseline | failed
                    error TEXT,
                    pages INTEGER NOT NULL DEFAULT 0,
                    items INTEGER NOT NULL DEFAULT 0,
                    changed INTEGER NOT NULL DEFAULT 0,
                    events INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX polls_by_source ON polls (source, id);

                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY,            -- detection order
                    id TEXT NOT NULL UNIQUE,            -- UUIDv7, what users see
                    type TEXT NOT NULL,
                    kinds TEXT NOT NULL,                -- space-separated
                    source TEXT NOT NULL,
                    chat_id TEXT,
                    occurred_at REAL NOT NULL,
                    json TEXT NOT NULL                  -- the event without "rule"
                );
                CREATE INDEX events_by_time ON events (occurred_at);
                CREATE INDEX events_by_chat ON events (chat_id);

                -- The outbox: one row per (event, rule, sink).
                CREATE TABLE deliveries (
                    id INTEGER PRIMARY KEY,
                    event_id TEXT NOT NULL,
                    rule TEXT,
                    sink TEXT NOT NULL,
                    chat_key TEXT NOT NULL,             -- source/chat: order is kept per chat and sink
                    status TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at REAL NOT NULL,
                    last_status INTEGER,
                    last_error TEXT,
                    created_at REAL NOT NULL,
                    delivered_at REAL,
                    finished_at REAL,
                    digest_id INTEGER                   -- set on a digest's row (event_id 'digest-ID')
                );
                -- A sink's pending rows in detection order: the dispatcher reads the front of
                -- this index and stops after a batch (never the whole queue).
                CREATE INDEX deliveries_queue ON deliveries (sink, status, id, chat_key, next_attempt_at);
                -- The earliest next attempt, and due rows when the front of the queue is waiting.
                CREATE INDEX deliveries_due ON deliveries (sink, status, next_attempt_at);
                CREATE INDEX deliveries_by_chat ON deliveries (sink, chat_key, status, id);
                CREATE INDEX deliveries_by_event ON deliveries (event_id);
                CREATE INDEX deliveries_finished ON deliveries (status, finished_at);

                -- A rule's digest window for one sink (rules.md `digest`): matches from
                -- opened_at until closes_at go out as one delivery. Sealed once the
                -- dispatcher has read its events: a later match opens a new digest.
                CREATE TABLE digests (
                    id INTEGER PRIMARY KEY,
                    rule TEXT NOT NULL,
                    sink TEXT NOT NULL,
                    opened_at REAL NOT NULL,
                    closes_at REAL NOT NULL,
                    sealed INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX digests_open ON digests (rule, sink, sealed, closes_at);
                CREATE TABLE digest_events (
                    digest_id INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
                    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                    PRIMARY KEY (digest_id, event_id)
                );
                CREATE INDEX digest_events_by_event ON digest_events (event_id);

                CREATE TABLE throttles (
                    rule TEXT NOT NULL,
                    chat_key TEXT NOT NULL,
                    until REAL NOT NULL,
                    PRIMARY KEY (rule, chat_key)
                );
                """)
        }
        // One word, one meaning: a chat's content hash is its `fingerprint`; `digest` is
        // only the batched notification of rules.md. Stores written before keep working.
        migrator.registerMigration("v2: fingerprint") { db in
            try db.execute(sql: """
                ALTER TABLE chats RENAME COLUMN digest TO fingerprint;
                DROP INDEX chats_digests;
                CREATE INDEX chats_fingerprints ON chats (source, chat_id, fingerprint, missing);
                UPDATE meta SET key = 'fingerprint_seed' WHERE key = 'digest_seed';
                -- The key that orders a chat's deliveries per sink and that throttles count by.
                ALTER TABLE deliveries RENAME COLUMN chat_key TO ordering_key;
                ALTER TABLE throttles RENAME COLUMN chat_key TO ordering_key;
                """)
        }
        // Recording an outcome should rewrite few pages: the row, and index pages that
        // many outcomes of one transaction share. The queue's indexes hold pending rows
        // only (as PostgreSQL's do; `status` kept as a column, so they still cover their
        // queries): a finished row leaves them at the front of the queue instead of moving
        // inside them, and they stay as small as the queue, not the delivery history.
        // `deliveries_finished` holds finished rows only, which join at its end. The
        // per-chat index leaves `status` out, so an outcome does not touch it at all
        // (its entries are in chat order, a page per chat): "is an older row of this chat
        // pending" reads the chat's rows older than the candidate, which retention bounds.
        migrator.registerMigration("v3: delivery indexes outcomes barely touch") { db in
            try db.execute(sql: """
                DROP INDEX deliveries_queue;
                DROP INDEX deliveries_due;
                DROP INDEX deliveries_by_chat;
                DROP INDEX deliveries_finished;
                -- A sink's pending rows in id order, covering what the front of the queue needs.
                CREATE INDEX deliveries_queue ON deliveries (sink, status, id, ordering_key, next_attempt_at)
                    WHERE status = 'pending';
                -- The earliest next attempt, and due rows when the front of the queue is waiting.
                CREATE INDEX deliveries_due ON deliveries (sink, status, next_attempt_at) WHERE status = 'pending';
                -- "Is an older row of this chat pending?" (untouched by outcomes)
                CREATE INDEX deliveries_by_key ON deliveries (sink, ordering_key, id);
                -- Finished rows by status and time, for retention.
                CREATE INDEX deliveries_finished ON deliveries (status, finished_at) WHERE finished_at IS NOT NULL;
                """)
        }
        // Two b-trees for the snapshot instead of three (a table and two indexes over it):
        // `chats` is keyed by (source, chat_id) and holds what a poll compares, in rows
        // small enough that loading the index or writing a baseline's keys touches few
        // pages; `chat_bodies` holds what the API sent, in listing order, appended to
        // without an index of its own. A chat's body is `chats.body_id`.
        migrator.registerMigration(chatBodiesMigration) { db in
            try db.execute(sql: """
                CREATE TABLE chat_bodies (
                    id INTEGER PRIMARY KEY,             -- listing order: a baseline appends in the API's order
                    source TEXT NOT NULL,
                    chat_id TEXT NOT NULL,
                    account_id TEXT,
                    account_type TEXT,
                    raw BLOB NOT NULL,                  -- the item's bytes as the API sent them
                    updated_at REAL NOT NULL
                );
                CREATE TABLE chat_keys (
                    source TEXT NOT NULL,
                    chat_id TEXT NOT NULL,
                    fingerprint INTEGER NOT NULL,       -- keyed XXH64 of the body's raw
                    missing INTEGER NOT NULL DEFAULT 0, -- complete polls in a row without this chat
                    body_id INTEGER NOT NULL,           -- chat_bodies.id
                    PRIMARY KEY (source, chat_id)
                ) WITHOUT ROWID;
                INSERT INTO chat_bodies (id, source, chat_id, account_id, account_type, raw, updated_at)
                    SELECT rowid, source, chat_id, account_id, account_type, raw, updated_at FROM chats ORDER BY rowid;
                INSERT INTO chat_keys (source, chat_id, fingerprint, missing, body_id)
                    SELECT source, chat_id, fingerprint, missing, rowid FROM chats ORDER BY source, chat_id;
                DROP TABLE chats;
                ALTER TABLE chat_keys RENAME TO chats;
                """)
        }
        return migrator
    }
}

extension Date {
    /// Seconds since 1970, as the store keeps times.
    var storeValue: Double { timeIntervalSince1970 }
    init(storeValue: Double) { self.init(timeIntervalSince1970: storeValue) }
}

extension SQLiteStore: EventLog, DeliveryLog, StoreRetention {}
