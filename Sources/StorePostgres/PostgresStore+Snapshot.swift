import ChatBridgeCore
import Detect
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Rules
import Store

extension PostgresStore {
    // MARK: Reading the snapshot

    static let sourceColumns = """
        name, filter_fingerprint, baseline_done, account_error, consecutive_failures, suspicious_streak,
        last_poll_at, last_outcome, last_error, last_success_at, failing_since, poll_sequence
        """

    package func sourceRecord(_ source: String) async throws -> SourceRecord? {
        try await withConnection { [self] connection in try await fetchSourceRecord(source, on: connection) }
    }

    package func sourceRecords() async throws -> [SourceRecord] {
        let rows = try await rows(PostgresQuery(unsafeSQL: "SELECT \(Self.sourceColumns) FROM sources ORDER BY name"))
        return try rows.map(Self.sourceRecord(from:))
    }

    func fetchSourceRecord(_ source: String, on connection: PostgresConnection, lock: Bool = false) async throws -> SourceRecord? {
        var query = PostgresQuery(unsafeSQL: "SELECT \(Self.sourceColumns) FROM sources WHERE name = $1" + (lock ? " FOR UPDATE" : ""))
        query.binds.append(source)
        return try await connection.rows(query, logger: logger).first.map(Self.sourceRecord(from:))
    }

    static func sourceRecord(from row: PostgresRow) throws -> SourceRecord {
        let (name, filters, baselineDone, accountError, failures, streak, lastPoll, outcome, lastError, lastSuccess, failingSince, sequence) =
            try row.decode((String, String, Bool, String?, Int, Int, Date?, String?, String?, Date?, Date?, Int64).self)
        var record = SourceRecord(name: name, filterFingerprint: filters)
        record.baselineDone = baselineDone
        record.accountError = accountError.flatMap { try? JSONValue.parse($0) }
        record.consecutiveFailures = failures
        record.suspiciousStreak = streak
        record.lastPollAt = lastPoll
        record.lastOutcome = outcome
        record.lastError = lastError
        record.lastSuccessAt = lastSuccess
        record.failingSince = failingSince
        record.pollSequence = sequence
        return record
    }

    func saveSourceRecord(_ record: SourceRecord, on connection: PostgresConnection) async throws {
        try await connection.run("""
            INSERT INTO sources (name, filter_fingerprint, baseline_done, account_error, consecutive_failures,
                suspicious_streak, last_poll_at, last_outcome, last_error, last_success_at, failing_since)
            VALUES (\(record.name), \(record.filterFingerprint), \(record.baselineDone), \(record.accountError?.compactString),
                \(record.consecutiveFailures), \(record.suspiciousStreak), \(record.lastPollAt), \(record.lastOutcome),
                \(record.lastError), \(record.lastSuccessAt), \(record.failingSince))
            ON CONFLICT (name) DO UPDATE SET
                filter_fingerprint = excluded.filter_fingerprint, baseline_done = excluded.baseline_done,
                account_error = excluded.account_error, consecutive_failures = excluded.consecutive_failures,
                suspicious_streak = excluded.suspicious_streak, last_poll_at = excluded.last_poll_at,
                last_outcome = excluded.last_outcome, last_error = excluded.last_error,
                last_success_at = excluded.last_success_at, failing_since = excluded.failing_since
            """, logger: logger)
    }

    package func loadSnapshotIndex(source: String) async throws -> SnapshotIndex {
        try await withConnection { [self] connection in
            // Room for as many chats as the last complete poll listed (a hint), instead of
            // counting the snapshot, which reads it twice.
            let expected = try await connection.integer("""
                SELECT items::BIGINT FROM polls WHERE source = \(source) AND outcome != 'failed'
                ORDER BY id DESC LIMIT 1
                """, logger: logger) ?? 0
            var loader = SnapshotIndex.Loader(expectedCount: Int(expected))
            let rows = try await connection.query(
                "SELECT chat_id, fingerprint, missing FROM chats WHERE source = \(source)", logger: logger)
            for try await row in rows {
                let (id, fingerprint, missing) = try row.decode((String, Int64, Int).self)
                loader.add(id: id, SnapshotEntry(fingerprint: UInt64(bitPattern: fingerprint), missing: missing))
            }
            return loader.finish()
        }
    }

    package func snapshotChats(source: String?) async throws -> [(source: String, chat: JSONValue)] {
        let rows: [PostgresRow]
        if let source {
            rows = try await self.rows("""
                SELECT c.source, c.raw FROM chats c JOIN sources s ON s.name = c.source AND s.baseline_done
                WHERE c.source = \(source) ORDER BY c.source, c.seq
                """)
        } else {
            rows = try await self.rows("""
                SELECT c.source, c.raw FROM chats c JOIN sources s ON s.name = c.source AND s.baseline_done
                ORDER BY c.source, c.seq
                """)
        }
        return try rows.map { row in
            let (source, raw) = try row.decode((String, Data).self)
            return (source, (try? JSONValue.parse(raw)) ?? .null)
        }
    }

    // MARK: A poll in progress

    /// Forgets what earlier polls of `source` staged (fenced: only the lease holder may).
    package func discardStaged(source: String) async throws {
        try await transaction { [self] connection in
            try await fence(source: source, on: connection)
            try await connection.run("DELETE FROM staging WHERE source = \(source)", logger: logger)
        }
    }

    package func beginBaseline(source: String, filterFingerprint: String) async throws {
        try await transaction { [self] connection in
            try await fence(source: source, on: connection)
            var record = try await fetchSourceRecord(source, on: connection, lock: true)
                ?? SourceRecord(name: source, filterFingerprint: filterFingerprint)
            record.baselineDone = false
            record.filterFingerprint = filterFingerprint
            record.suspiciousStreak = 0
            try await saveSourceRecord(record, on: connection)
            try await connection.run("DELETE FROM chats WHERE source = \(source)", logger: logger)
        }
    }

    /// How many chats one multi-row statement writes (7 parameters each, far below the
    /// protocol's 65,535).
    static let rowsPerStatement = 1000

    /// Writes chats of a baseline in progress whole: PostgreSQL keeps a chat's key and body
    /// in one row of `chats`, so nothing is left for ``storeBaselineKeys(source:keys:)`` and
    /// `keys` stays as it is. A chat listed again replaces its earlier row.
    package func appendBaselineChats(
        source: String, chats: [StagedChat], now: Date, keys: inout BaselineKeys
    ) async throws {
        guard !chats.isEmpty else { return }
        try await transaction { [self] connection in
            try await fence(source: source, on: connection)
            for batch in Self.lastCopies(chats).chunked(Self.rowsPerStatement) {
                var query = PostgresQuery(unsafeSQL: "")
                var values: [String] = []
                for chat in batch {
                    let base = query.binds.count
                    values.append("($\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4), $\(base + 5), $\(base + 6), 0, $\(base + 7))")
                    query.binds.append(source)
                    query.binds.append(chat.id)
                    query.binds.append(chat.accountID)
                    query.binds.append(chat.accountType)
                    query.binds.append(ByteBuffer(data: chat.raw))
                    query.binds.append(Int64(bitPattern: chat.fingerprint))
                    query.binds.append(now)
                }
                query.sql = """
                    INSERT INTO chats (source, chat_id, account_id, account_type, raw, fingerprint, missing, updated_at)
                    VALUES \(values.joined(separator: ", "))
                    ON CONFLICT (source, chat_id) DO UPDATE SET
                        account_id = excluded.account_id, account_type = excluded.account_type,
                        raw = excluded.raw, fingerprint = excluded.fingerprint, updated_at = excluded.updated_at
                    """
                try await connection.run(query, logger: logger)
            }
        }
    }

    /// Nothing left to write (``appendBaselineChats(source:chats:now:keys:)`` wrote each
    /// chat's key with its body): counts the baseline's chats.
    package func storeBaselineKeys(source: String, keys: BaselineKeys) async throws -> Int {
        try await withConnection { [self] connection in
            Int(try await connection.integer("SELECT count(*) FROM chats WHERE source = \(source)", logger: logger) ?? 0)
        }
    }

    /// A chat listed twice keeps its later copy, in the place of its first (one statement
    /// may not touch a row twice).
    static func lastCopies(_ chats: [StagedChat]) -> [StagedChat] {
        var position: [String: Int] = [:]
        var result: [StagedChat] = []
        for chat in chats {
            if let index = position[chat.id] {
                result[index] = chat
            } else {
                position[chat.id] = result.count
                result.append(chat)
            }
        }
        return result
    }

    /// Sets aside new or changed chats under this process's lease epoch: the rows of an
    /// instance that lost the lease are never applied by the one that holds it.
    package func stage(source: String, chats: [StagedChat]) async throws {
        guard !chats.isEmpty else { return }
        try await transaction { [self] connection in
            let epoch = try await fence(source: source, on: connection)
            for batch in Self.lastCopies(chats).chunked(Self.rowsPerStatement) {
                var query = PostgresQuery(unsafeSQL: "")
                var values: [String] = []
                for chat in batch {
                    let base = query.binds.count
                    values.append("($\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4), $\(base + 5), $\(base + 6), $\(base + 7))")
                    query.binds.append(source)
                    query.binds.append(epoch)
                    query.binds.append(chat.id)
                    query.binds.append(chat.accountID)
                    query.binds.append(chat.accountType)
                    query.binds.append(ByteBuffer(data: chat.raw))
                    query.binds.append(Int64(bitPattern: chat.fingerprint))
                }
                query.sql = """
                    INSERT INTO staging (source, epoch, chat_id, account_id, account_type, raw, fingerprint)
                    VALUES \(values.joined(separator: ", "))
                    ON CONFLICT (source, epoch, chat_id) DO UPDATE SET
                        account_id = excluded.account_id, account_type = excluded.account_type,
                        raw = excluded.raw, fingerprint = excluded.fingerprint
                    """
                try await connection.run(query, logger: logger)
            }
        }
    }

    // MARK: Applying a poll

    package func applyCompletePoll(_ poll: CompletedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await transaction { [self] connection in
            let epoch = try await fence(source: poll.source, on: connection)
            var application = PollApplication()
            let now = poll.finishedAt
            var record = try await fetchSourceRecord(poll.source, on: connection, lock: true)
                ?? SourceRecord(name: poll.source, filterFingerprint: poll.filterFingerprint)
            let detector = EventDetector(source: poll.source, now: now) { self.nextEventID(now: now) }
            let writer = PostgresOutboxWriter(connection: connection, logger: logger, router: router, now: now)

            let account = detector.accountEvent(
                outstanding: record.accountError, failure: nil, complete: true,
                accountID: poll.accountID, accountType: poll.accountType)
            if let event = account.event {
                try await writer.write(event, orderingKey: OrderingKey.account(source: poll.source), into: &application)
            }
            record.accountError = account.outstanding

            if poll.isBaseline {
                if poll.emitBaseline {
                    try await emitBaseline(poll, detector: detector, writer: writer, on: connection, into: &application)
                }
                application.chatWrites += poll.items
            } else {
                try await applyStagedChanges(
                    poll, epoch: epoch, detector: detector, writer: writer, on: connection, into: &application)
                try await applyAbsences(poll, detector: detector, writer: writer, on: connection, into: &application)
                if !poll.reappeared.isEmpty {
                    try await connection.run("""
                        UPDATE chats SET missing = 0 WHERE source = \(poll.source) AND chat_id = ANY(\(poll.reappeared))
                        """, logger: logger)
                    application.chatWrites += poll.reappeared.count
                }
            }
            try await writer.flush()
            try await connection.run("DELETE FROM staging WHERE source = \(poll.source)", logger: logger)

            record.complete(poll, at: now)
            try await saveSourceRecord(record, on: connection)
            application.pollSequence = try await connection.integer("""
                UPDATE sources SET poll_sequence = poll_sequence + 1 WHERE name = \(poll.source) RETURNING poll_sequence
                """, logger: logger)
            try await connection.run("""
                INSERT INTO polls (source, instance, started_at, finished_at, outcome, pages, items, changed, events)
                VALUES (\(poll.source), \(instanceName), \(poll.startedAt), \(now), \(poll.outcome), \(poll.pages),
                        \(poll.items), \(application.chatWrites), \(application.eventCount))
                """, logger: logger)
            return application
        }
    }

    /// With `baseline: emit`: every chat of the baseline as a `chat.added`, in the order
    /// the API listed them, read a page at a time.
    private func emitBaseline(
        _ poll: CompletedPoll, detector: EventDetector, writer: PostgresOutboxWriter, on connection: PostgresConnection,
        into application: inout PollApplication
    ) async throws {
        var after: Int64 = 0
        while true {
            let rows = try await connection.rows("""
                SELECT seq, chat_id, account_id, account_type, raw FROM chats
                WHERE source = \(poll.source) AND seq > \(after) ORDER BY seq LIMIT \(Self.rowsPerStatement)
                """, logger: logger)
            for row in rows {
                let (seq, chatID, accountID, accountType, raw) = try row.decode((Int64, String, String?, String?, Data).self)
                after = seq
                let event = detector.added(
                    chatID: chatID, accountID: accountID, accountType: accountType, chat: try JSONValue.parse(raw))
                try await writer.write(
                    event, orderingKey: OrderingKey.chat(source: poll.source, chatID: chatID), into: &application)
            }
            if rows.count < Self.rowsPerStatement { return }
        }
    }

    private func applyStagedChanges(
        _ poll: CompletedPoll, epoch: Int64, detector: EventDetector, writer: PostgresOutboxWriter,
        on connection: PostgresConnection, into application: inout PollApplication
    ) async throws {
        let rows = try await connection.rows("""
            SELECT s.chat_id, s.account_id, s.account_type, s.raw, s.fingerprint, c.raw
            FROM staging s LEFT JOIN chats c ON c.source = s.source AND c.chat_id = s.chat_id
            WHERE s.source = \(poll.source) AND s.epoch = \(epoch) ORDER BY s.seq
            """, logger: logger)
        let now = poll.finishedAt
        for row in rows {
            let (chatID, accountID, accountType, raw, fingerprint, previousRaw) =
                try row.decode((String, String?, String?, Data, Int64, Data?).self)
            let previous = try previousRaw.map { try JSONValue.parse($0) }
            let event = detector.changed(
                chatID: chatID, accountID: accountID, accountType: accountType, previous: previous,
                current: try JSONValue.parse(raw))
            if let event {
                try await writer.write(
                    event, orderingKey: OrderingKey.chat(source: poll.source, chatID: chatID), into: &application)
            }
            application.chatWrites += 1
            application.updatedFingerprints[chatID] = UInt64(bitPattern: fingerprint)
        }
        guard !rows.isEmpty else { return }
        try await connection.run("""
            INSERT INTO chats (source, chat_id, account_id, account_type, raw, fingerprint, missing, updated_at)
            SELECT source, chat_id, account_id, account_type, raw, fingerprint, 0, \(now)
            FROM staging WHERE source = \(poll.source) AND epoch = \(epoch) ORDER BY seq
            ON CONFLICT (source, chat_id) DO UPDATE SET
                account_id = excluded.account_id, account_type = excluded.account_type, raw = excluded.raw,
                fingerprint = excluded.fingerprint, missing = 0, updated_at = excluded.updated_at
            """, logger: logger)
    }

    private func applyAbsences(
        _ poll: CompletedPoll, detector: EventDetector, writer: PostgresOutboxWriter, on connection: PostgresConnection,
        into application: inout PollApplication
    ) async throws {
        if !poll.absences.stillMissing.isEmpty {
            let ids = Array(poll.absences.stillMissing)
            try await connection.run("""
                UPDATE chats SET missing = missing + 1 WHERE source = \(poll.source) AND chat_id = ANY(\(ids))
                """, logger: logger)
            application.chatWrites += ids.count
        }
        for id in poll.absences.removals {
            let rows = try await connection.rows("""
                DELETE FROM chats WHERE source = \(poll.source) AND chat_id = \(id) RETURNING account_id, account_type, raw
                """, logger: logger)
            guard let row = rows.first else { continue }
            let (accountID, accountType, raw) = try row.decode((String?, String?, Data).self)
            let last = (try? JSONValue.parse(raw)) ?? .null
            let event = detector.removed(chatID: id, accountID: accountID, accountType: accountType, last: last)
            try await writer.write(event, orderingKey: OrderingKey.chat(source: poll.source, chatID: id), into: &application)
            application.chatWrites += 1
            application.removed.append(id)
        }
    }

    @discardableResult
    package func recordFailedPoll(_ poll: FailedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await transaction { [self] connection in
            try await fence(source: poll.source, on: connection)
            try await connection.run("DELETE FROM staging WHERE source = \(poll.source)", logger: logger)
            var application = PollApplication()
            let now = poll.finishedAt
            var record = try await fetchSourceRecord(poll.source, on: connection, lock: true)
                ?? SourceRecord(name: poll.source, filterFingerprint: poll.filterFingerprint)
            let detector = EventDetector(source: poll.source, now: now) { self.nextEventID(now: now) }
            let account = detector.accountEvent(
                outstanding: record.accountError, failure: poll.accountError, complete: false,
                accountID: poll.accountID, accountType: poll.accountType)
            if let event = account.event {
                let writer = PostgresOutboxWriter(connection: connection, logger: logger, router: router, now: now)
                try await writer.write(event, orderingKey: OrderingKey.account(source: poll.source), into: &application)
                try await writer.flush()
            }
            record.accountError = account.outstanding
            record.fail(poll, at: now)
            try await saveSourceRecord(record, on: connection)
            try await connection.run("""
                INSERT INTO polls (source, instance, started_at, finished_at, outcome, error, pages, items, events)
                VALUES (\(poll.source), \(instanceName), \(poll.startedAt), \(now), 'failed', \(poll.error), \(poll.pages),
                        \(poll.items), \(application.eventCount))
                """, logger: logger)
            return application
        }
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
