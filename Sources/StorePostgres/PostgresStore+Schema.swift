import Foundation
import Logging
import PostgresNIO
import Store

extension PostgresStore {
    /// The key of the advisory lock that serialises migrations across instances.
    static let migrationLockKey: Int64 = 0x6368_6174_6272_6467  // "chatbrdg"

    /// The schema, version by version. Each entry runs once, in order, in one transaction;
    /// `chatbridge_migrations` records which ran. Statements without values only: the
    /// fingerprint seed is inserted with a bound parameter.
    static let migrations: [(version: Int, statements: [String])] = [
        (1, [
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            // One row per configured source: its baseline, filters, health, and how many
            // polls committed (a poller trusts its in-memory index only while that matches).
            """
            CREATE TABLE sources (
                name TEXT PRIMARY KEY,
                filter_fingerprint TEXT NOT NULL,
                baseline_done BOOLEAN NOT NULL DEFAULT FALSE,
                account_error TEXT,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                suspicious_streak INTEGER NOT NULL DEFAULT 0,
                last_poll_at TIMESTAMPTZ,
                last_outcome TEXT,
                last_error TEXT,
                last_success_at TIMESTAMPTZ,
                failing_since TIMESTAMPTZ,
                poll_sequence BIGINT NOT NULL DEFAULT 0
            )
            """,
            // Who polls which source: holder (instance name and process token), epoch
            // (increases whenever the lease changes hands), expiry by the database clock.
            """
            CREATE TABLE leases (
                source TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                token TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                acquired_at TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE instances (
                token TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                last_seen_at TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL
            )
            """,
            // Jobs one instance at a time runs (retention).
            "CREATE TABLE jobs (name TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
            """
            CREATE TABLE chats (
                source TEXT NOT NULL,
                chat_id TEXT NOT NULL,
                account_id TEXT,
                account_type TEXT,
                raw BYTEA NOT NULL,
                fingerprint BIGINT NOT NULL,
                missing INTEGER NOT NULL DEFAULT 0,
                updated_at TIMESTAMPTZ NOT NULL,
                seq BIGSERIAL NOT NULL,
                PRIMARY KEY (source, chat_id)
            )
            """,
            // New or changed chats of a poll in progress, by the lease epoch they were staged under.
            """
            CREATE TABLE staging (
                source TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                chat_id TEXT NOT NULL,
                account_id TEXT,
                account_type TEXT,
                raw BYTEA NOT NULL,
                fingerprint BIGINT NOT NULL,
                seq BIGSERIAL NOT NULL,
                PRIMARY KEY (source, epoch, chat_id)
            )
            """,
            """
            CREATE TABLE polls (
                id BIGSERIAL PRIMARY KEY,
                source TEXT NOT NULL,
                instance TEXT,
                started_at TIMESTAMPTZ NOT NULL,
                finished_at TIMESTAMPTZ NOT NULL,
                outcome TEXT NOT NULL,
                error TEXT,
                pages INTEGER NOT NULL DEFAULT 0,
                items INTEGER NOT NULL DEFAULT 0,
                changed INTEGER NOT NULL DEFAULT 0,
                events INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX polls_by_source ON polls (source, id)",
            """
            CREATE TABLE events (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                kinds TEXT NOT NULL,
                source TEXT NOT NULL,
                chat_id TEXT,
                occurred_at TIMESTAMPTZ NOT NULL,
                json TEXT NOT NULL
            )
            """,
            "CREATE INDEX events_by_time ON events (occurred_at, seq)",
            "CREATE INDEX events_by_chat ON events (chat_id)",
            // The outbox. claimed_by/claimed_until: the instance attempting the row, and
            // until when (by the database clock) no other instance may.
            """
            CREATE TABLE deliveries (
                id BIGSERIAL PRIMARY KEY,
                event_id TEXT NOT NULL,
                rule TEXT,
                sink TEXT NOT NULL,
                ordering_key TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at TIMESTAMPTZ NOT NULL,
                last_status INTEGER,
                last_error TEXT,
                created_at TIMESTAMPTZ NOT NULL,
                delivered_at TIMESTAMPTZ,
                finished_at TIMESTAMPTZ,
                digest_id BIGINT,
                claimed_by TEXT,
                claimed_until TIMESTAMPTZ
            )
            """,
            // A sink's pending rows in detection order: fetches read the front of it.
            "CREATE INDEX deliveries_queue ON deliveries (sink, id) WHERE status = 'pending'",
            "CREATE INDEX deliveries_due ON deliveries (sink, next_attempt_at) WHERE status = 'pending'",
            "CREATE INDEX deliveries_by_key ON deliveries (sink, ordering_key, id) WHERE status = 'pending'",
            "CREATE INDEX deliveries_by_event ON deliveries (event_id)",
            "CREATE INDEX deliveries_finished ON deliveries (status, finished_at)",
            """
            CREATE TABLE digests (
                id BIGSERIAL PRIMARY KEY,
                rule TEXT NOT NULL,
                sink TEXT NOT NULL,
                opened_at TIMESTAMPTZ NOT NULL,
                closes_at TIMESTAMPTZ NOT NULL,
                sealed BOOLEAN NOT NULL DEFAULT FALSE
            )
            """,
            "CREATE INDEX digests_open ON digests (rule, sink, sealed, closes_at)",
            """
            CREATE TABLE digest_events (
                digest_id BIGINT NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
                event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
                PRIMARY KEY (digest_id, event_id)
            )
            """,
            "CREATE INDEX digest_events_by_event ON digest_events (event_id)",
            """
            CREATE TABLE throttles (
                rule TEXT NOT NULL,
                ordering_key TEXT NOT NULL,
                until TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (rule, ordering_key)
            )
            """,
        ]),
    ]

    /// Creates the schema or brings it up to date, holding a session advisory lock so
    /// that instances starting together run each migration once.
    func migrate(schema: String?) async throws {
        try await withConnection { [self] connection in
            try await connection.run("SELECT pg_advisory_lock(\(Self.migrationLockKey))", logger: logger)
            do {
                if let schema {
                    // An identifier, checked to be [a-z0-9_]; it cannot be a bound parameter.
                    try await connection.run(
                        PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                }
                try await applyMigrations(connection)
                try await connection.run("SELECT pg_advisory_unlock(\(Self.migrationLockKey))", logger: logger)
            } catch {
                _ = try? await connection.run("SELECT pg_advisory_unlock(\(Self.migrationLockKey))", logger: logger)
                throw error
            }
        }
    }

    private func applyMigrations(_ connection: PostgresConnection) async throws {
        try await connection.run("""
            CREATE TABLE IF NOT EXISTS chatbridge_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)
            """, logger: logger)
        let done = try await connection.integer("SELECT max(version)::BIGINT FROM chatbridge_migrations", logger: logger) ?? 0
        for migration in Self.migrations where migration.version > done {
            try await connection.run("BEGIN", logger: logger)
            do {
                for statement in migration.statements {
                    try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                if migration.version == 1 {
                    let seed = String(UInt64.random(in: 1...UInt64.max))
                    try await connection.run(
                        "INSERT INTO meta (key, value) VALUES ('fingerprint_seed', \(seed))", logger: logger)
                }
                try await connection.run(
                    "INSERT INTO chatbridge_migrations (version, applied_at) VALUES (\(migration.version), now())",
                    logger: logger)
                try await connection.run("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.run("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    func readFingerprintSeed() async throws -> UInt64 {
        let rows = try await rows("SELECT value FROM meta WHERE key = 'fingerprint_seed'")
        guard let text = try rows.first?.decode(String.self), let seed = UInt64(text) else {
            throw StoreError(path: displayName, message: "not a chatbridge database (no fingerprint seed)")
        }
        return seed
    }
}
