import Foundation
import GRDB

/// What the store knows of a source: its baseline, its filters and its health.
public struct SourceRecord: Sendable, Hashable {
    public var name: String
    /// The filters the snapshot was taken with; a different one means a new baseline.
    public var filterFingerprint: String
    public var baselineDone: Bool
    /// The error object of the outstanding `account.error`, `nil` when none is.
    public var accountError: JSONValue?
    public var consecutiveFailures: Int
    public var suspiciousStreak: Int
    public var lastPollAt: Date?
    public var lastOutcome: String?
    public var lastError: String?
    public var lastSuccessAt: Date?
    public var failingSince: Date?

    public init(name: String, filterFingerprint: String) {
        self.name = name
        self.filterFingerprint = filterFingerprint
        baselineDone = false
        consecutiveFailures = 0
        suspiciousStreak = 0
    }
}

/// A chat of the last complete snapshot, as much of it as a poll needs to compare.
public struct SnapshotEntry: Sendable, Hashable {
    public var digest: UInt64
    /// Complete polls in a row that did not list this chat.
    public var missing: Int
    public init(digest: UInt64, missing: Int) {
        self.digest = digest
        self.missing = missing
    }
}

/// A new or changed chat of the poll in progress, set aside until the poll completes.
public struct StagedChat: Sendable, Hashable {
    public var id: String
    public var accountID: String?
    public var accountType: String?
    /// The item's bytes as the API sent them.
    public var raw: Data
    public var digest: UInt64
    public init(id: String, accountID: String?, accountType: String?, raw: Data, digest: UInt64) {
        self.id = id
        self.accountID = accountID
        self.accountType = accountType
        self.raw = raw
        self.digest = digest
    }
}

/// Where one event goes: the rule that matched (or `nil` with no rules at all) and
/// its sinks. Written as outbox rows in the event's transaction.
public struct OutboxRoute: Sendable, Hashable {
    public var rule: String?
    public var sinks: [String]
    /// At most one delivery per rule and chat within this window (rules.md `throttle`).
    public var throttle: Duration?
    /// The rule's quiet hours: a row written inside them is due at their end.
    public var quietHours: QuietHours?
    /// The rule's digest window: the event joins the open digest of (rule, sink), or
    /// opens one that goes out when the window closes.
    public var digest: Duration?

    public init(
        rule: String?, sinks: [String], throttle: Duration? = nil, quietHours: QuietHours? = nil,
        digest: Duration? = nil
    ) {
        self.rule = rule
        self.sinks = sinks
        self.throttle = throttle
        self.quietHours = quietHours
        self.digest = digest
    }
}

/// Decides, for each detected event, which outbox rows to write. Runs inside the
/// detection transaction, so it must be quick and must not do I/O.
public typealias EventRouter = @Sendable (Event) -> [OutboxRoute]

/// A poll that completed: every page was read. What the store needs to apply it.
public struct CompletedPoll: Sendable {
    public var source: String
    public var filterFingerprint: String
    /// This poll is the source's baseline (first poll, or its filters changed).
    public var isBaseline: Bool
    /// With a baseline: report every chat as `chat.added` (`baseline: emit`).
    public var emitBaseline: Bool
    public var startedAt: Date
    public var finishedAt: Date
    public var pages: Int
    public var items: Int
    /// Chats of the last snapshot this poll listed again after missing them.
    public var reappeared: [String]
    /// What to do about the chats this poll did not list (``SnapshotRules/planAbsences``).
    public var absences: SnapshotRules.AbsencePlan
    /// Account id and type for `account.recovered`, when the source's filters name them.
    public var accountID: String?
    public var accountType: String?

    public init(
        source: String, filterFingerprint: String, isBaseline: Bool, emitBaseline: Bool, startedAt: Date,
        finishedAt: Date, pages: Int, items: Int, reappeared: [String], absences: SnapshotRules.AbsencePlan,
        accountID: String? = nil, accountType: String? = nil
    ) {
        self.source = source
        self.filterFingerprint = filterFingerprint
        self.isBaseline = isBaseline
        self.emitBaseline = emitBaseline
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.pages = pages
        self.items = items
        self.reappeared = reappeared
        self.absences = absences
        self.accountID = accountID
        self.accountType = accountType
    }
}

/// A poll that did not complete, as the store records it.
public struct FailedPoll: Sendable {
    public var source: String
    public var filterFingerprint: String
    public var startedAt: Date
    public var finishedAt: Date
    public var pages: Int
    public var items: Int
    /// One line: what went wrong and where (never a secret).
    public var error: String
    /// The API's error object when the API said the account or key needs a person
    /// (401/403): the first such poll of an outage emits `account.error`.
    public var accountError: JSONValue?
    public var accountID: String?
    public var accountType: String?

    public init(
        source: String, filterFingerprint: String, startedAt: Date, finishedAt: Date, pages: Int, items: Int,
        error: String, accountError: JSONValue? = nil, accountID: String? = nil, accountType: String? = nil
    ) {
        self.source = source
        self.filterFingerprint = filterFingerprint
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.pages = pages
        self.items = items
        self.error = error
        self.accountError = accountError
        self.accountID = accountID
        self.accountType = accountType
    }
}

/// What applying a poll wrote.
public struct PollApplication: Sendable, Hashable {
    /// Events stored, by kind (and by type for `account.*`), for metrics and logs.
    public var eventCount: Int = 0
    public var kindCounts: [String: Int] = [:]
    /// Outbox rows written.
    public var deliveryCount: Int = 0
    /// Chat rows written (inserted, updated or deleted).
    public var chatWrites: Int = 0
    /// Digests of chats now in the snapshot whose digest changed; removed ids.
    public var updatedDigests: [String: UInt64] = [:]
    public var removed: [String] = []
}

extension SQLiteStore {
    // MARK: Reading the snapshot

    /// The stored record of `source`, or `nil` before its first poll.
    public func sourceRecord(_ source: String) async throws -> SourceRecord? {
        try await pool.read { db in try Self.fetchSourceRecord(db, source) }
    }

    /// Every stored source record, by name.
    public func sourceRecords() async throws -> [SourceRecord] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sources ORDER BY name").compactMap {
                try Self.fetchSourceRecord(db, $0)
            }
        }
    }

    static func fetchSourceRecord(_ db: Database, _ source: String) throws -> SourceRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sources WHERE name = ?", arguments: [source]) else {
            return nil
        }
        var record = SourceRecord(name: row["name"], filterFingerprint: row["filter_fingerprint"])
        record.baselineDone = row["baseline_done"]
        if let text: String = row["account_error"] { record.accountError = try? JSONValue.parse(text) }
        record.consecutiveFailures = row["consecutive_failures"]
        record.suspiciousStreak = row["suspicious_streak"]
        record.lastPollAt = (row["last_poll_at"] as Double?).map(Date.init(storeValue:))
        record.lastOutcome = row["last_outcome"]
        record.lastError = row["last_error"]
        record.lastSuccessAt = (row["last_success_at"] as Double?).map(Date.init(storeValue:))
        record.failingSince = (row["failing_since"] as Double?).map(Date.init(storeValue:))
        return record
    }

    /// The digest and missing counter of every chat in `source`'s last complete snapshot.
    public func snapshotIndex(source: String) async throws -> [String: SnapshotEntry] {
        try await loadSnapshotIndex(source: source).entries
    }

    /// The snapshot's digests and missing counters as the in-memory index a poll works
    /// with, read straight into it: this is read at the start of every `run --once`.
    public func loadSnapshotIndex(source: String) async throws -> SnapshotIndex {
        try await pool.read { db in
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM chats WHERE source = ?", arguments: [source]) ?? 0
            var index = SnapshotIndex(minimumCapacity: count)
            let rows = try Row.fetchCursor(
                db, sql: "SELECT chat_id, digest, missing FROM chats WHERE source = ?", arguments: [source])
            while let row = try rows.next() {
                index.set(row[0], SnapshotEntry(digest: UInt64(bitPattern: row[1]), missing: row[2]))
            }
            return index
        }
    }

    /// The chats of the last complete snapshot, as the API sent them, newest activity
    /// first; of one source or of all.
    public func snapshotChats(source: String?) async throws -> [(source: String, chat: JSONValue)] {
        try await pool.read { db in
            // A baseline in progress is not a snapshot yet.
            let sql = "SELECT source, raw FROM chats WHERE source IN (SELECT name FROM sources WHERE baseline_done)"
                + (source == nil ? "" : " AND source = ?") + " ORDER BY source, rowid"
            let rows = try Row.fetchCursor(db, sql: sql, arguments: source.map { [$0] } ?? [])
            var result: [(source: String, chat: JSONValue)] = []
            while let row = try rows.next() {
                let raw: Data = row[1]
                result.append((row[0], (try? JSONValue.parse(raw)) ?? .null))
            }
            return result
        }
    }

    // MARK: A poll in progress

    /// Sets aside new or changed chats of a poll in progress. They live in a temporary
    /// table of the writer's connection: a crash or a failed poll leaves no trace.
    public func stage(source: String, chats: [StagedChat]) async throws {
        guard !chats.isEmpty else { return }
        try await pool.write { db in
            try Self.createStagingTable(db)
            let statement = try db.cachedStatement(sql: """
                INSERT INTO temp.staging (source, chat_id, account_id, account_type, raw, digest)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (source, chat_id) DO UPDATE SET
                    account_id = excluded.account_id, account_type = excluded.account_type,
                    raw = excluded.raw, digest = excluded.digest
                """)
            for chat in chats {
                statement.setUncheckedArguments([
                    source, chat.id, chat.accountID, chat.accountType, chat.raw, Int64(bitPattern: chat.digest),
                ])
                try statement.execute()
            }
        }
    }

    /// Forgets what a poll in progress had staged (it failed or was stopped).
    public func discardStaged(source: String) async throws {
        try await pool.write { db in
            try Self.createStagingTable(db)
            try db.execute(sql: "DELETE FROM temp.staging WHERE source = ?", arguments: [source])
        }
    }

    /// Starts a baseline of `source`: forgets its snapshot and marks it as not yet
    /// baselined, in one transaction.
    ///
    /// A baseline reports no chat changes, so its chats can go straight into the
    /// snapshot table page by page (``storeBaselineChats(source:chats:)``) instead of
    /// through the staging table: until ``applyCompletePoll(_:router:)`` marks the
    /// baseline done, nothing treats those rows as a snapshot, and a failed baseline is
    /// simply started again. This halves what a first poll of a large workspace writes.
    public func beginBaseline(source: String, filterFingerprint: String) async throws {
        try await pool.write { db in
            var record = try Self.fetchSourceRecord(db, source)
                ?? SourceRecord(name: source, filterFingerprint: filterFingerprint)
            record.baselineDone = false
            record.filterFingerprint = filterFingerprint
            record.suspiciousStreak = 0
            try Self.saveSourceRecord(db, record)
            try db.execute(sql: "DELETE FROM chats WHERE source = ?", arguments: [source])
        }
    }

    /// Writes chats of a baseline in progress (see ``beginBaseline(source:filterFingerprint:)``);
    /// a chat listed twice keeps its later copy.
    public func storeBaselineChats(source: String, chats: [StagedChat], now: Date = Date()) async throws {
        guard !chats.isEmpty else { return }
        try await pool.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO chats (source, chat_id, account_id, account_type, raw, digest, missing, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 0, ?)
                ON CONFLICT (source, chat_id) DO UPDATE SET
                    account_id = excluded.account_id, account_type = excluded.account_type,
                    raw = excluded.raw, digest = excluded.digest, updated_at = excluded.updated_at
                """)
            for chat in chats {
                statement.setUncheckedArguments([
                    source, chat.id, chat.accountID, chat.accountType, chat.raw, Int64(bitPattern: chat.digest),
                    now.storeValue,
                ])
                try statement.execute()
            }
        }
    }

    static func createStagingTable(_ db: Database) throws {
        // The staging table lives in the connection's temporary database (a file that
        // SQLite deletes on close), so a large poll does not hold its chats in memory.
        try db.execute(sql: """
            CREATE TEMP TABLE IF NOT EXISTS staging (
                seq INTEGER PRIMARY KEY,
                source TEXT NOT NULL, chat_id TEXT NOT NULL, account_id TEXT, account_type TEXT,
                raw BLOB NOT NULL, digest INTEGER NOT NULL,
                UNIQUE (source, chat_id)
            )
            """)
    }

    // MARK: Applying a poll

    /// Applies a complete poll in one transaction: the staged chats, missing counters,
    /// removals, the events they make, and an outbox row for every delivery the
    /// `router` decides. Either all of it is stored or none of it.
    public func applyCompletePoll(_ poll: CompletedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await pool.write { db in
            try Self.createStagingTable(db)
            var application = PollApplication()
            let now = poll.finishedAt
            var record = try Self.fetchSourceRecord(db, poll.source)
                ?? SourceRecord(name: poll.source, filterFingerprint: poll.filterFingerprint)
            let writer = EventWriter(store: self, db: db, router: router, now: now)

            if let error = record.accountError {
                let event = Event(
                    id: self.nextEventID(now: now), type: .accountRecovered, kinds: [], occurredAt: now,
                    source: poll.source, accountID: poll.accountID, accountType: poll.accountType, error: error)
                try writer.write(event, chatKey: poll.source, into: &application)
                record.accountError = nil
            }

            if poll.isBaseline {
                // The chats are in place already (storeBaselineChats); with `baseline: emit`
                // each becomes a chat.added, in the order the API listed them.
                if poll.emitBaseline {
                    let rows = try Row.fetchCursor(db, sql: """
                        SELECT chat_id, account_id, account_type, raw FROM chats WHERE source = ? ORDER BY rowid
                        """, arguments: [poll.source])
                    while let row = try rows.next() {
                        let raw: Data = row[3]
                        let chat = try JSONValue.parse(raw)
                        let event = Event(
                            id: self.nextEventID(now: now), type: .chatAdded, kinds: [.chatAdded], occurredAt: now,
                            source: poll.source, accountID: row[1], accountType: row[2], chatID: row[0], chat: chat)
                        try writer.write(event, chatKey: "\(poll.source)/\(row[0] as String)", into: &application)
                    }
                }
                application.chatWrites += poll.items
            } else {
                try Self.applyStagedChanges(db, poll: poll, store: self, writer: writer, into: &application)
                try Self.applyAbsences(db, poll: poll, store: self, writer: writer, into: &application)
                if !poll.reappeared.isEmpty {
                    let statement = try db.cachedStatement(
                        sql: "UPDATE chats SET missing = 0 WHERE source = ? AND chat_id = ?")
                    for id in poll.reappeared {
                        try statement.execute(arguments: [poll.source, id])
                        application.chatWrites += 1
                    }
                }
            }
            try db.execute(sql: "DELETE FROM temp.staging WHERE source = ?", arguments: [poll.source])

            record.filterFingerprint = poll.filterFingerprint
            record.baselineDone = true
            record.consecutiveFailures = 0
            record.suspiciousStreak = poll.absences.suspiciousStreak
            record.lastPollAt = now
            record.lastOutcome = poll.isBaseline ? "baseline" : (poll.absences.suspicious ? "complete (suspicious)" : "complete")
            record.lastError = nil
            record.lastSuccessAt = now
            record.failingSince = nil
            try Self.saveSourceRecord(db, record)
            try db.execute(sql: """
                INSERT INTO polls (source, started_at, finished_at, outcome, pages, items, changed, events)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [poll.source, poll.startedAt.storeValue, now.storeValue, record.lastOutcome,
                                 poll.pages, poll.items, application.chatWrites, application.eventCount])
            return application
        }
    }

    private static func applyStagedChanges(
        _ db: Database, poll: CompletedPoll, store: SQLiteStore, writer: EventWriter,
        into application: inout PollApplication
    ) throws {
        let rows = try Row.fetchCursor(db, sql: """
            SELECT s.chat_id, s.account_id, s.account_type, s.raw, s.digest, c.raw
            FROM temp.staging s LEFT JOIN chats c ON c.source = s.source AND c.chat_id = s.chat_id
            WHERE s.source = ? ORDER BY s.seq
            """, arguments: [poll.source])
        let upsert = try db.cachedStatement(sql: """
            INSERT INTO chats (source, chat_id, account_id, account_type, raw, digest, missing, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, 0, ?)
            ON CONFLICT (source, chat_id) DO UPDATE SET
                account_id = excluded.account_id, account_type = excluded.account_type, raw = excluded.raw,
                digest = excluded.digest, missing = 0, updated_at = excluded.updated_at
            """)
        let now = poll.finishedAt
        while let row = try rows.next() {
            let chatID: String = row[0]
            let accountID: String? = row[1]
            let accountType: String? = row[2]
            let raw: Data = row[3]
            let digest: Int64 = row[4]
            let previousRaw: Data? = row[5]
            let chat = try JSONValue.parse(raw)
            var event: Event?
            if let previousRaw {
                let previous = try JSONValue.parse(previousRaw)
                let diff = ChatDiff(
                    previous: previous.objectValue ?? JSONObject(), current: chat.objectValue ?? JSONObject(), now: now)
                if !diff.isEmpty {
                    event = Event(
                        id: store.nextEventID(now: now), type: .chatChanged, kinds: diff.kinds, occurredAt: now,
                        source: poll.source, accountID: accountID, accountType: accountType, chatID: chatID,
                        chat: chat, previous: previous, changes: diff.changes)
                }
            } else {
                event = Event(
                    id: store.nextEventID(now: now), type: .chatAdded, kinds: [.chatAdded], occurredAt: now,
                    source: poll.source, accountID: accountID, accountType: accountType, chatID: chatID, chat: chat)
            }
            if let event { try writer.write(event, chatKey: "\(poll.source)/\(chatID)", into: &application) }
            try upsert.execute(arguments: [poll.source, chatID, accountID, accountType, raw, digest, now.storeValue])
            application.chatWrites += 1
            application.updatedDigests[chatID] = UInt64(bitPattern: digest)
        }
    }

    private static func applyAbsences(
        _ db: Database, poll: CompletedPoll, store: SQLiteStore, writer: EventWriter,
        into application: inout PollApplication
    ) throws {
        let now = poll.finishedAt
        if !poll.absences.stillMissing.isEmpty {
            let statement = try db.cachedStatement(
                sql: "UPDATE chats SET missing = missing + 1 WHERE source = ? AND chat_id = ?")
            for id in poll.absences.stillMissing {
                try statement.execute(arguments: [poll.source, id])
                application.chatWrites += 1
            }
        }
        guard !poll.absences.removals.isEmpty else { return }
        let select = try db.cachedStatement(
            sql: "SELECT account_id, account_type, raw FROM chats WHERE source = ? AND chat_id = ?")
        let delete = try db.cachedStatement(sql: "DELETE FROM chats WHERE source = ? AND chat_id = ?")
        for id in poll.absences.removals {
            guard let row = try Row.fetchOne(select, arguments: [poll.source, id]) else { continue }
            let raw: Data = row[2]
            let last = (try? JSONValue.parse(raw)) ?? .null
            let event = Event(
                id: store.nextEventID(now: now), type: .chatRemoved, kinds: [.chatRemoved], occurredAt: now,
                source: poll.source, accountID: row[0], accountType: row[1], chatID: id, chat: last, previous: last)
            try writer.write(event, chatKey: "\(poll.source)/\(id)", into: &application)
            try delete.execute(arguments: [poll.source, id])
            application.chatWrites += 1
            application.removed.append(id)
        }
    }

    /// Records a poll that did not complete: its `polls` row and the source's health.
    /// The snapshot is untouched. The first 401/403 of an outage stores an
    /// `account.error` event (and its outbox rows); later ones of the same outage do not.
    @discardableResult
    public func recordFailedPoll(_ poll: FailedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await pool.write { db in
            try Self.createStagingTable(db)
            try db.execute(sql: "DELETE FROM temp.staging WHERE source = ?", arguments: [poll.source])
            var application = PollApplication()
            let now = poll.finishedAt
            var record = try Self.fetchSourceRecord(db, poll.source)
                ?? SourceRecord(name: poll.source, filterFingerprint: poll.filterFingerprint)
            if let error = poll.accountError, record.accountError == nil {
                let writer = EventWriter(store: self, db: db, router: router, now: now)
                let event = Event(
                    id: self.nextEventID(now: now), type: .accountError, kinds: [], occurredAt: now, source: poll.source,
                    accountID: poll.accountID, accountType: poll.accountType, error: error)
                try writer.write(event, chatKey: poll.source, into: &application)
                record.accountError = error
            }
            record.consecutiveFailures += 1
            record.lastPollAt = now
            record.lastOutcome = "failed"
            record.lastError = poll.error
            record.failingSince = record.failingSince ?? poll.startedAt
            try Self.saveSourceRecord(db, record)
            try db.execute(sql: """
                INSERT INTO polls (source, started_at, finished_at, outcome, error, pages, items, events)
                VALUES (?, ?, ?, 'failed', ?, ?, ?, ?)
                """, arguments: [poll.source, poll.startedAt.storeValue, now.storeValue, poll.error, poll.pages,
                                 poll.items, application.eventCount])
            return application
        }
    }

    static func saveSourceRecord(_ db: Database, _ record: SourceRecord) throws {
        try db.execute(sql: """
            INSERT INTO sources (name, filter_fingerprint, baseline_done, account_error, consecutive_failures,
                suspicious_streak, last_poll_at, last_outcome, last_error, last_success_at, failing_since)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET
                filter_fingerprint = excluded.filter_fingerprint, baseline_done = excluded.baseline_done,
                account_error = excluded.account_error, consecutive_failures = excluded.consecutive_failures,
                suspicious_streak = excluded.suspicious_streak, last_poll_at = excluded.last_poll_at,
                last_outcome = excluded.last_outcome, last_error = excluded.last_error,
                last_success_at = excluded.last_success_at, failing_since = excluded.failing_since
            """, arguments: [
                record.name, record.filterFingerprint, record.baselineDone, record.accountError?.compactString,
                record.consecutiveFailures, record.suspiciousStreak, record.lastPollAt?.storeValue, record.lastOutcome,
                record.lastError, record.lastSuccessAt?.storeValue, record.failingSince?.storeValue,
            ])
    }
}

/// Writes events and their outbox rows inside a poll's transaction.
///
/// Per route and sink: a plain row due now (or at the end of the rule's quiet hours when
/// the event is detected inside them); for a rule with a `digest` window, the event joins
/// the open digest of (rule, sink), or opens one whose single row is due when the window
/// closes (rules.md).
struct EventWriter {
    let store: SQLiteStore
    let db: Database
    let router: EventRouter
    let now: Date

    func write(_ event: Event, chatKey: String, into application: inout PollApplication) throws {
        try db.execute(sql: """
            INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [event.id, event.type.rawValue, event.kinds.map(\.rawValue).joined(separator: " "),
                             event.source, event.chatID, event.occurredAt.storeValue, event.json().compactString])
        application.eventCount += 1
        if event.kinds.isEmpty {
            application.kindCounts[event.type.rawValue, default: 0] += 1
        }
        for kind in event.kinds { application.kindCounts[kind.rawValue, default: 0] += 1 }
        let insert = try db.cachedStatement(sql: """
            INSERT INTO deliveries (event_id, rule, sink, chat_key, status, attempts, next_attempt_at, created_at)
            VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)
            """)
        for route in router(event) {
            if let rule = route.rule, let throttle = route.throttle {
                let until = try Double.fetchOne(
                    db, sql: "SELECT until FROM throttles WHERE rule = ? AND chat_key = ?", arguments: [rule, chatKey])
                if let until, until > now.storeValue { continue }
                try db.execute(sql: """
                    INSERT INTO throttles (rule, chat_key, until) VALUES (?, ?, ?)
                    ON CONFLICT (rule, chat_key) DO UPDATE SET until = excluded.until
                    """, arguments: [rule, chatKey, now.storeValue + RetryPolicy.seconds(throttle)])
            }
            if let rule = route.rule, let window = route.digest {
                for sink in route.sinks {
                    try addToDigest(event, rule: rule, sink: sink, window: window, quietHours: route.quietHours,
                                    into: &application)
                }
                continue
            }
            let due = route.quietHours?.end(after: now) ?? now
            for sink in route.sinks {
                try insert.execute(arguments: [event.id, route.rule, sink, chatKey, due.storeValue, now.storeValue])
                application.deliveryCount += 1
            }
        }
    }

    /// Adds `event` to the open digest of (`rule`, `sink`), or opens one: a `digests` row
    /// closing `window` from now and its delivery row (`event_id` `digest-ID`, a chat key
    /// of its own so that no chat's order waits for it), due when it closes (or when the
    /// rule's quiet hours end, if it closes inside them).
    private func addToDigest(
        _ event: Event, rule: String, sink: String, window: Duration, quietHours: QuietHours?,
        into application: inout PollApplication
    ) throws {
        let open = try Int64.fetchOne(db, sql: """
            SELECT id FROM digests WHERE rule = ? AND sink = ? AND sealed = 0 AND closes_at > ?
            ORDER BY closes_at DESC LIMIT 1
            """, arguments: [rule, sink, now.storeValue])
        let digestID: Int64
        if let open {
            digestID = open
        } else {
            let closesAt = now.addingTimeInterval(RetryPolicy.seconds(window))
            try db.execute(
                sql: "INSERT INTO digests (rule, sink, opened_at, closes_at) VALUES (?, ?, ?, ?)",
                arguments: [rule, sink, now.storeValue, closesAt.storeValue])
            digestID = db.lastInsertedRowID
            let due = quietHours?.end(after: closesAt) ?? closesAt
            try db.execute(sql: """
                INSERT INTO deliveries (event_id, rule, sink, chat_key, status, attempts, next_attempt_at, created_at, digest_id)
                VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)
                """, arguments: [SQLiteStore.digestEventID(digestID), rule, sink, "digest/\(digestID)",
                                 due.storeValue, now.storeValue, digestID])
            application.deliveryCount += 1
        }
        try db.execute(
            sql: "INSERT OR IGNORE INTO digest_events (digest_id, event_id) VALUES (?, ?)",
            arguments: [digestID, event.id])
    }
}
