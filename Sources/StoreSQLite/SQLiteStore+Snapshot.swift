import Foundation
import GRDB
import GRDBSQLite
import ChatBridgeCore
import Detect
import Rules
import Store

extension SQLiteStore {
    // MARK: Reading the snapshot

    /// The stored record of `source`, or `nil` before its first poll.
    package func sourceRecord(_ source: String) async throws -> SourceRecord? {
        try await pool.read { db in try Self.fetchSourceRecord(db, source) }
    }

    /// Every stored source record, by name.
    package func sourceRecords() async throws -> [SourceRecord] {
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

    /// The snapshot's fingerprints and missing counters as the in-memory index a poll works
    /// with, read straight into it: this is read at the start of every `run --once`.
    ///
    /// The rows come from `chats`, small rows keyed by (source, chat_id) (never the bodies
    /// in `chat_bodies`), and the statement is stepped with SQLite's C API, each row's
    /// columns read in place: no `String`, `Data` or `Row` per chat.
    package func loadSnapshotIndex(source: String) async throws -> SnapshotIndex {
        try await pool.read { db in
            // Room for as many chats as the last complete poll listed (a hint: the arrays
            // grow if it is short), instead of counting the snapshot, which reads it twice.
            let expected = try Int.fetchOne(db, sql: """
                SELECT items FROM polls WHERE source = ? AND outcome != 'failed' ORDER BY id DESC LIMIT 1
                """, arguments: [source]) ?? 0
            let statement = try db.makeStatement(
                sql: "SELECT chat_id, fingerprint, missing FROM chats WHERE source = ?")
            try statement.setArguments([source])
            let handle = statement.sqliteStatement
            var loader = SnapshotIndex.Loader(expectedCount: expected)
            while true {
                switch sqlite3_step(handle) {
                case SQLITE_ROW:
                    let entry = SnapshotEntry(
                        fingerprint: UInt64(bitPattern: sqlite3_column_int64(handle, 1)),
                        missing: Int(sqlite3_column_int64(handle, 2)))
                    // `chat_id` is TEXT: ask for the text first, then its length (SQLite's order).
                    let text = sqlite3_column_text(handle, 0)
                    let length = Int(sqlite3_column_bytes(handle, 0))
                    loader.add(utf8: UnsafeRawBufferPointer(start: text, count: text == nil ? 0 : length), entry)
                case SQLITE_DONE:
                    return loader.finish()
                case let code:
                    throw DatabaseError(
                        resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                        sql: statement.sql)
                }
            }
        }
    }

    /// The chats of the last complete snapshot, as the API sent them, newest activity
    /// first; of one source or of all.
    package func snapshotChats(source: String?) async throws -> [(source: String, chat: JSONValue)] {
        try await pool.read { db in
            // A baseline in progress is not a snapshot yet.
            let sql = "SELECT source, raw FROM chat_bodies WHERE source IN (SELECT name FROM sources WHERE baseline_done)"
                + (source == nil ? "" : " AND source = ?") + " ORDER BY source, id"
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
    package func stage(source: String, chats: [StagedChat]) async throws {
        guard !chats.isEmpty else { return }
        try await pool.write { db in
            try Self.createStagingTable(db)
            let statement = try db.cachedStatement(sql: """
                INSERT INTO temp.staging (source, chat_id, account_id, account_type, raw, fingerprint)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (source, chat_id) DO UPDATE SET
                    account_id = excluded.account_id, account_type = excluded.account_type,
                    raw = excluded.raw, fingerprint = excluded.fingerprint
                """)
            for chat in chats {
                statement.bind(source, at: 1)
                statement.bind(chat.id, at: 2)
                statement.bind(chat.accountID, at: 3)
                statement.bind(chat.accountType, at: 4)
                statement.bind(chat.raw, at: 5)
                statement.bind(Int64(bitPattern: chat.fingerprint), at: 6)
                try statement.runOnce(db)
            }
        }
    }

    /// Forgets what a poll in progress had staged (it failed or was stopped).
    package func discardStaged(source: String) async throws {
        try await pool.write { db in
            try Self.createStagingTable(db)
            try db.execute(sql: "DELETE FROM temp.staging WHERE source = ?", arguments: [source])
        }
    }

    /// Starts a baseline of `source`: forgets its snapshot and marks it as not yet
    /// baselined, in one transaction.
    ///
    /// A baseline reports no chat changes, so its chats can go straight into the
    /// snapshot tables instead of through the staging table: the bodies a few pages at a
    /// time (``appendBaselineChats(source:chats:now:keys:)``), the keys once at the end
    /// (``storeBaselineKeys(source:keys:)``). Until ``applyCompletePoll(_:router:)`` marks
    /// the baseline done, nothing treats those rows as a snapshot, and a baseline cut short
    /// is simply started again: this deletes its keys and every body of `source`, those no
    /// key points at too (a baseline killed before its keys were written leaves only
    /// bodies). This halves what a first poll of a large workspace writes.
    package func beginBaseline(source: String, filterFingerprint: String) async throws {
        try await pool.write { db in
            let stored = try Self.fetchSourceRecord(db, source)
            var record = stored ?? SourceRecord(name: source, filterFingerprint: filterFingerprint)
            record.baselineDone = false
            record.filterFingerprint = filterFingerprint
            record.suspiciousStreak = 0
            try Self.saveSourceRecord(db, record)
            if stored?.baselineDone == false {
                // A baseline of this source started before and never finished: its bodies
                // may have no key. `chat_bodies` has no index by source (a baseline appends
                // to it, a poll reaches a body through its key), so this reads the table once.
                try db.execute(sql: "DELETE FROM chat_bodies WHERE source = ?", arguments: [source])
            } else {
                try db.execute(sql: """
                    DELETE FROM chat_bodies WHERE id IN (SELECT body_id FROM chats WHERE source = ?)
                    """, arguments: [source])
            }
            try db.execute(sql: "DELETE FROM chats WHERE source = ?", arguments: [source])
        }
    }

    /// Appends the bodies of chats of a baseline in progress (see
    /// ``beginBaseline(source:filterFingerprint:)``), in listing order, and records each
    /// one's id, fingerprint and body in `keys`. A chat listed twice has two bodies until
    /// ``storeBaselineKeys(source:keys:)`` keeps the later one.
    package func appendBaselineChats(
        source: String, chats: [StagedChat], now: Date, keys: inout BaselineKeys
    ) async throws {
        guard !chats.isEmpty else { return }
        let bodyIDs = try await pool.write { db in
            let insertBody = try db.cachedStatement(sql: """
                INSERT INTO chat_bodies (source, chat_id, account_id, account_type, raw, updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """)
            var bodyIDs: [Int64] = []
            bodyIDs.reserveCapacity(chats.count)
            let updatedAt = now.storeValue
            // Each chat's fields are read in place (indexing, not a copy of the chat).
            for position in chats.indices {
                insertBody.bind(source, at: 1)
                insertBody.bind(chats[position].id, at: 2)
                insertBody.bind(chats[position].accountID, at: 3)
                insertBody.bind(chats[position].accountType, at: 4)
                insertBody.bind(chats[position].raw, at: 5)
                insertBody.bind(updatedAt, at: 6)
                try insertBody.runOnce(db)
                bodyIDs.append(db.lastInsertedRowID)
            }
            return bodyIDs
        }
        for position in chats.indices {
            keys.append(id: chats[position].id, fingerprint: chats[position].fingerprint, bodyID: bodyIDs[position])
        }
    }

    /// Writes the keys of a baseline whose bodies are all appended, in one transaction:
    /// sorted by id, so that they append to `chats` and each of its pages is written once
    /// (the ids arrive in random order); each chat once, pointing at its copy listed last,
    /// the earlier copies' bodies deleted.
    package func storeBaselineKeys(source: String, keys: BaselineKeys) async throws -> Int {
        let plan = keys.plan()
        guard !plan.keys.isEmpty else { return 0 }
        try await pool.write { db in
            let insertKey = try db.cachedStatement(sql: """
                INSERT INTO chats (source, chat_id, fingerprint, missing, body_id) VALUES (?, ?, ?, 0, ?)
                """)
            try keys.forEachKey(of: plan) { id, fingerprint, bodyID in
                insertKey.bind(source, at: 1)
                insertKey.bind(utf8: id, at: 2)
                insertKey.bind(Int64(bitPattern: fingerprint), at: 3)
                insertKey.bind(bodyID, at: 4)
                try insertKey.runOnce(db)
            }
            let deleteBody = try db.cachedStatement(sql: "DELETE FROM chat_bodies WHERE id = ?")
            for bodyID in plan.supersededBodies {
                deleteBody.bind(bodyID, at: 1)
                try deleteBody.runOnce(db)
            }
        }
        return plan.keys.count
    }

    static func createStagingTable(_ db: Database) throws {
        // The staging table lives in the connection's temporary database (a file that
        // SQLite deletes on close), so a large poll does not hold its chats in memory.
        try db.execute(sql: """
            CREATE TEMP TABLE IF NOT EXISTS staging (
                seq INTEGER PRIMARY KEY,
                source TEXT NOT NULL, chat_id TEXT NOT NULL, account_id TEXT, account_type TEXT,
                raw BLOB NOT NULL, fingerprint INTEGER NOT NULL,
                UNIQUE (source, chat_id)
            )
            """)
    }

    // MARK: Applying a poll

    /// Applies a complete poll in one transaction: the staged chats, missing counters,
    /// removals, the events ``EventDetector`` makes of them, and the outbox rows that
    /// `router` and ``OutboxPlanner`` decide. Either all of it is stored or none of it.
    package func applyCompletePoll(_ poll: CompletedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await pool.write { db in
            try Self.createStagingTable(db)
            var application = PollApplication()
            let now = poll.finishedAt
            var record = try Self.fetchSourceRecord(db, poll.source)
                ?? SourceRecord(name: poll.source, filterFingerprint: poll.filterFingerprint)
            let detector = EventDetector(source: poll.source, now: now) { self.nextEventID(now: now) }
            let writer = OutboxWriter(db: db, router: router, now: now) { self.nextEventID(now: now) }

            let account = detector.accountEvent(
                outstanding: record.accountError, failure: nil, complete: true,
                accountID: poll.accountID, accountType: poll.accountType)
            if let event = account.event {
                try writer.write(event, orderingKey: OrderingKey.account(source: poll.source), into: &application)
            }
            record.accountError = account.outstanding

            if poll.isBaseline {
                // The chats are in place already (appendBaselineChats, storeBaselineKeys); with `baseline: emit`
                // each becomes a chat.added, in the order the API listed them.
                if poll.emitBaseline {
                    let rows = try Row.fetchCursor(db, sql: """
                        SELECT b.chat_id, b.account_id, b.account_type, b.raw
                        FROM chats c JOIN chat_bodies b ON b.id = c.body_id WHERE c.source = ? ORDER BY b.id
                        """, arguments: [poll.source])
                    while let row = try rows.next() {
                        let chatID: String = row[0]
                        let event = detector.added(
                            chatID: chatID, accountID: row[1], accountType: row[2], chat: try JSONValue.parse(row[3] as Data))
                        try writer.write(
                            event, orderingKey: OrderingKey.chat(source: poll.source, chatID: chatID), into: &application)
                    }
                }
                application.chatWrites += poll.items
            } else {
                try Self.applyStagedChanges(db, poll: poll, detector: detector, writer: writer, into: &application)
                try Self.applyAbsences(db, poll: poll, detector: detector, writer: writer, into: &application)
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

            record.complete(poll, at: now)
            try Self.saveSourceRecord(db, record)
            try db.execute(sql: """
                INSERT INTO polls (source, started_at, finished_at, outcome, pages, items, changed, events)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [poll.source, poll.startedAt.storeValue, now.storeValue, record.lastOutcome,
                                 poll.pages, poll.items, application.chatWrites, application.eventCount])
            return application
        }
    }

    /// Writes each staged chat into the snapshot, with the event ``EventDetector`` makes
    /// of it and the last stored copy. A changed chat's body is rewritten in place, so the
    /// snapshot keeps its listing order.
    private static func applyStagedChanges(
        _ db: Database, poll: CompletedPoll, detector: EventDetector, writer: OutboxWriter,
        into application: inout PollApplication
    ) throws {
        let rows = try Row.fetchCursor(db, sql: """
            SELECT s.chat_id, s.account_id, s.account_type, s.raw, s.fingerprint, c.body_id, b.raw
            FROM temp.staging s
            LEFT JOIN chats c ON c.source = s.source AND c.chat_id = s.chat_id
            LEFT JOIN chat_bodies b ON b.id = c.body_id
            WHERE s.source = ? ORDER BY s.seq
            """, arguments: [poll.source])
        let updateBody = try db.cachedStatement(sql: """
            UPDATE chat_bodies SET account_id = ?, account_type = ?, raw = ?, updated_at = ? WHERE id = ?
            """)
        let updateKey = try db.cachedStatement(sql: """
            UPDATE chats SET fingerprint = ?, missing = 0 WHERE source = ? AND chat_id = ?
            """)
        let insertBody = try db.cachedStatement(sql: """
            INSERT INTO chat_bodies (source, chat_id, account_id, account_type, raw, updated_at) VALUES (?, ?, ?, ?, ?, ?)
            """)
        let insertKey = try db.cachedStatement(sql: """
            INSERT INTO chats (source, chat_id, fingerprint, missing, body_id) VALUES (?, ?, ?, 0, ?)
            """)
        let now = poll.finishedAt
        while let row = try rows.next() {
            let chatID: String = row[0]
            let accountID: String? = row[1]
            let accountType: String? = row[2]
            let raw: Data = row[3]
            let fingerprint: Int64 = row[4]
            let bodyID: Int64? = row[5]
            let previous = try (row[6] as Data?).map { try JSONValue.parse($0) }
            let event = detector.changed(
                chatID: chatID, accountID: accountID, accountType: accountType, previous: previous,
                current: try JSONValue.parse(raw))
            if let event {
                try writer.write(
                    event, orderingKey: OrderingKey.chat(source: poll.source, chatID: chatID), into: &application)
            }
            if let bodyID {
                updateBody.bind(accountID, at: 1)
                updateBody.bind(accountType, at: 2)
                updateBody.bind(raw, at: 3)
                updateBody.bind(now.storeValue, at: 4)
                updateBody.bind(bodyID, at: 5)
                try updateBody.runOnce(db)
                updateKey.bind(fingerprint, at: 1)
                updateKey.bind(poll.source, at: 2)
                updateKey.bind(chatID, at: 3)
                try updateKey.runOnce(db)
            } else {
                insertBody.bind(poll.source, at: 1)
                insertBody.bind(chatID, at: 2)
                insertBody.bind(accountID, at: 3)
                insertBody.bind(accountType, at: 4)
                insertBody.bind(raw, at: 5)
                insertBody.bind(now.storeValue, at: 6)
                try insertBody.runOnce(db)
                insertKey.bind(poll.source, at: 1)
                insertKey.bind(chatID, at: 2)
                insertKey.bind(fingerprint, at: 3)
                insertKey.bind(db.lastInsertedRowID, at: 4)
                try insertKey.runOnce(db)
            }
            application.chatWrites += 1
            application.updatedFingerprints[chatID] = UInt64(bitPattern: fingerprint)
        }
    }

    /// Carries out the ``SnapshotRules/AbsencePlan`` the poller decided.
    private static func applyAbsences(
        _ db: Database, poll: CompletedPoll, detector: EventDetector, writer: OutboxWriter,
        into application: inout PollApplication
    ) throws {
        if !poll.absences.stillMissing.isEmpty {
            let statement = try db.cachedStatement(
                sql: "UPDATE chats SET missing = missing + 1 WHERE source = ? AND chat_id = ?")
            for id in poll.absences.stillMissing {
                try statement.execute(arguments: [poll.source, id])
                application.chatWrites += 1
            }
        }
        guard !poll.absences.removals.isEmpty else { return }
        let select = try db.cachedStatement(sql: """
            SELECT b.account_id, b.account_type, b.raw, b.id
            FROM chats c JOIN chat_bodies b ON b.id = c.body_id WHERE c.source = ? AND c.chat_id = ?
            """)
        let deleteBody = try db.cachedStatement(sql: "DELETE FROM chat_bodies WHERE id = ?")
        let deleteKey = try db.cachedStatement(sql: "DELETE FROM chats WHERE source = ? AND chat_id = ?")
        for id in poll.absences.removals {
            guard let row = try Row.fetchOne(select, arguments: [poll.source, id]) else { continue }
            let last = (try? JSONValue.parse(row[2] as Data)) ?? .null
            let event = detector.removed(chatID: id, accountID: row[0], accountType: row[1], last: last)
            try writer.write(event, orderingKey: OrderingKey.chat(source: poll.source, chatID: id), into: &application)
            try deleteBody.execute(arguments: [row[3] as Int64])
            try deleteKey.execute(arguments: [poll.source, id])
            application.chatWrites += 1
            application.removed.append(id)
        }
    }

    /// Records a poll that did not complete: its `polls` row and the source's health.
    /// The snapshot is untouched. The first 401/403 of an outage stores an
    /// `account.error` event (and its outbox rows); later ones of the same outage do not.
    @discardableResult
    package func recordFailedPoll(_ poll: FailedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await pool.write { db in
            try Self.createStagingTable(db)
            try db.execute(sql: "DELETE FROM temp.staging WHERE source = ?", arguments: [poll.source])
            var application = PollApplication()
            let now = poll.finishedAt
            var record = try Self.fetchSourceRecord(db, poll.source)
                ?? SourceRecord(name: poll.source, filterFingerprint: poll.filterFingerprint)
            let detector = EventDetector(source: poll.source, now: now) { self.nextEventID(now: now) }
            let account = detector.accountEvent(
                outstanding: record.accountError, failure: poll.accountError, complete: false,
                accountID: poll.accountID, accountType: poll.accountType)
            if let event = account.event {
                let writer = OutboxWriter(db: db, router: router, now: now) { self.nextEventID(now: now) }
                try writer.write(event, orderingKey: OrderingKey.account(source: poll.source), into: &application)
            }
            record.accountError = account.outstanding
            record.fail(poll, at: now)
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

/// Writes events and carries out the rules' outbox decisions inside a poll's transaction.
///
/// Every decision (which sinks, due when, throttled or not, which digest) comes from the
/// router and ``OutboxPlanner``; this writer only turns each into rows.
struct OutboxWriter {
    let db: Database
    let router: EventRouter
    let now: Date
    /// Makes the id of a digest that opens (a UUIDv7, like event ids).
    let makeID: () -> String

    func write(_ event: Event, orderingKey: String, into application: inout PollApplication) throws {
        let insert = try db.cachedStatement(sql: """
            INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        insert.bind(event.id, at: 1)
        insert.bind(event.type.rawValue, at: 2)
        insert.bind(event.kinds.map { $0.rawValue }.joined(separator: " "), at: 3)
        insert.bind(event.source, at: 4)
        insert.bind(event.chatID, at: 5)
        insert.bind(event.occurredAt.storeValue, at: 6)
        insert.bind(utf8: event.json().compactBytes, at: 7)
        try insert.runOnce(db)
        application.count(event)
        let routes = router(event)
        guard !routes.isEmpty else { return }
        let facts = OutboxFacts(
            throttledUntil: { rule in
                try Double.fetchOne(
                    db, sql: "SELECT until FROM throttles WHERE rule = ? AND ordering_key = ?", arguments: [rule, orderingKey]
                ).map(Date.init(storeValue:))
            },
            openDigest: { rule, sink in
                try Int64.fetchOne(db, sql: """
                    SELECT id FROM digests WHERE rule = ? AND sink = ? AND sealed = 0 AND closes_at > ?
                    ORDER BY closes_at DESC LIMIT 1
                    """, arguments: [rule, sink, now.storeValue])
            })
        for decision in try OutboxPlanner.decisions(for: routes, now: now, facts: facts) {
            try execute(decision, event: event, orderingKey: orderingKey, into: &application)
        }
    }

    private func execute(
        _ decision: OutboxDecision, event: Event, orderingKey: String, into application: inout PollApplication
    ) throws {
        switch decision {
        case .deliver(let rule, let sink, let due):
            let insert = try db.cachedStatement(sql: """
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)
                """)
            insert.bind(event.id, at: 1)
            insert.bind(rule, at: 2)
            insert.bind(sink, at: 3)
            insert.bind(orderingKey, at: 4)
            insert.bind(due.storeValue, at: 5)
            insert.bind(now.storeValue, at: 6)
            try insert.runOnce(db)
            application.deliveryCount += 1
        case .startThrottle(let rule, let until):
            try db.cachedStatement(sql: """
                INSERT INTO throttles (rule, ordering_key, until) VALUES (?, ?, ?)
                ON CONFLICT (rule, ordering_key) DO UPDATE SET until = excluded.until
                """).execute(arguments: [rule, orderingKey, until.storeValue])
        case .throttled(let rule, let until):
            application.suppressed.append(.init(eventID: event.id, rule: rule, until: until))
        case .joinDigest(_, _, let digestID):
            try addEvent(event, toDigest: digestID)
        case .openDigest(let rule, let sink, let closesAt, let due):
            try db.execute(
                sql: "INSERT INTO digests (rule, sink, opened_at, closes_at) VALUES (?, ?, ?, ?)",
                arguments: [rule, sink, now.storeValue, closesAt.storeValue])
            let digestID = db.lastInsertedRowID
            // The digest's row has an ordering key of its own, so that no chat's order waits for it.
            try db.execute(sql: """
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at, digest_id)
                VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)
                """, arguments: [makeID(), rule, sink, OrderingKey.digest(digestID),
                                 due.storeValue, now.storeValue, digestID])
            application.deliveryCount += 1
            try addEvent(event, toDigest: digestID)
        }
    }

    private func addEvent(_ event: Event, toDigest digestID: Int64) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO digest_events (digest_id, event_id) VALUES (?, ?)",
            arguments: [digestID, event.id])
    }
}
extension SQLiteStore: SnapshotStore {}
