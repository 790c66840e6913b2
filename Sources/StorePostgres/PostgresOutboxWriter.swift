import ChatBridgeCore
import Detect
import Foundation
import Logging
import PostgresNIO
import Rules
import Store

/// Writes events and carries out the rules' outbox decisions inside a poll's transaction,
/// as ``OutboxWriter`` does for SQLite.
///
/// Rows are gathered and written by ``flush()`` in a few multi-row statements before the
/// transaction commits: a round trip to the server costs more than a row, and a poll
/// with a thousand changes would otherwise make thousands of them. What later events of
/// the same poll must see (a throttle window or a digest this poll started) is kept in
/// memory beside the rows.
///
/// ``OutboxPlanner`` asks its facts synchronously, so the writer reads them first: the
/// throttle window of each throttled rule for the ordering key, and the open digest of
/// each (rule, sink) a digest route names. An open digest is looked up under a
/// transaction-scoped advisory lock on its (rule, sink) and locked `FOR SHARE`, so that
/// two instances never open two digests for one window, and a dispatcher sealing it waits
/// for this transaction: a match is either in the digest it reads or opens a new one.
final class PostgresOutboxWriter {
    let connection: PostgresConnection
    let logger: Logger
    let router: EventRouter
    let now: Date

    private var events: [Event] = []
    private var deliveries: [(eventID: String, rule: String?, sink: String, orderingKey: String, due: Date, digestID: Int64?)] = []
    private var digestEvents: [(digestID: Int64, eventID: String)] = []
    /// Throttle windows this poll started, by rule and ordering key (also written by flush).
    private var throttles: [String: (rule: String, orderingKey: String, until: Date)] = [:]
    /// Open digests by rule and sink, as found or opened in this transaction (nil: none open).
    private var digests: [String: Int64?] = [:]

    init(connection: PostgresConnection, logger: Logger, router: @escaping EventRouter, now: Date) {
        self.connection = connection
        self.logger = logger
        self.router = router
        self.now = now
    }

    func write(_ event: Event, orderingKey: String, into application: inout PollApplication) async throws {
        events.append(event)
        application.count(event)
        let routes = router(event)
        guard !routes.isEmpty else { return }

        var throttled: [String: Date] = [:]
        var open: [String: Int64] = [:]
        for route in routes {
            guard let rule = route.rule else { continue }
            if route.throttle != nil, throttled[rule] == nil {
                if let until = try await throttleUntil(rule: rule, orderingKey: orderingKey) { throttled[rule] = until }
            }
            if route.digest != nil {
                for sink in route.sinks where open[Self.key(rule, sink)] == nil {
                    if let id = try await openDigest(rule: rule, sink: sink) { open[Self.key(rule, sink)] = id }
                }
            }
        }
        let facts = OutboxFacts(
            throttledUntil: { rule in throttled[rule] },
            openDigest: { rule, sink in open[Self.key(rule, sink)] })
        for decision in try OutboxPlanner.decisions(for: routes, now: now, facts: facts) {
            try await execute(decision, event: event, orderingKey: orderingKey, into: &application)
        }
    }

    private static func key(_ first: String, _ second: String) -> String { "\(first)\u{0}\(second)" }

    private func throttleUntil(rule: String, orderingKey: String) async throws -> Date? {
        if let started = throttles[Self.key(rule, orderingKey)] { return started.until }
        let rows = try await connection.rows("""
            SELECT until FROM throttles WHERE rule = \(rule) AND ordering_key = \(orderingKey)
            """, logger: logger)
        return try rows.first?.decode(Date.self)
    }

    private func openDigest(rule: String, sink: String) async throws -> Int64? {
        if let known = digests[Self.key(rule, sink)] { return known }
        try await connection.run("""
            SELECT pg_advisory_xact_lock(hashtext('chatbridge.digest'), hashtext(\(rule + "/" + sink)))
            """, logger: logger)
        let rows = try await connection.rows("""
            SELECT id FROM digests WHERE rule = \(rule) AND sink = \(sink) AND NOT sealed AND closes_at > \(now)
            ORDER BY closes_at DESC LIMIT 1 FOR SHARE
            """, logger: logger)
        let id = try rows.first?.decode(Int64.self)
        digests[Self.key(rule, sink)] = .some(id)
        return id
    }

    private func execute(
        _ decision: OutboxDecision, event: Event, orderingKey: String, into application: inout PollApplication
    ) async throws {
        switch decision {
        case .deliver(let rule, let sink, let due):
            deliveries.append((event.id, rule, sink, orderingKey, due, nil))
            application.deliveryCount += 1
        case .startThrottle(let rule, let until):
            throttles[Self.key(rule, orderingKey)] = (rule, orderingKey, until)
        case .throttled(let rule, let until):
            application.suppressed.append(.init(eventID: event.id, rule: rule, until: until))
        case .joinDigest(_, _, let digestID):
            digestEvents.append((digestID, event.id))
        case .openDigest(let rule, let sink, let closesAt, let due):
            let rows = try await connection.rows("""
                INSERT INTO digests (rule, sink, opened_at, closes_at) VALUES (\(rule), \(sink), \(now), \(closesAt))
                RETURNING id
                """, logger: logger)
            guard let digestID = try rows.first?.decode(Int64.self) else { return }
            digests[Self.key(rule, sink)] = .some(digestID)
            // The digest's row has an ordering key of its own, so that no chat's order waits for it.
            deliveries.append((PostgresStore.digestEventID(digestID), rule, sink, OrderingKey.digest(digestID), due, digestID))
            application.deliveryCount += 1
            digestEvents.append((digestID, event.id))
        }
    }

    /// Writes what was gathered: events (in detection order), then delivery rows, digest
    /// memberships and throttle windows.
    func flush() async throws {
        let now = now
        try await connection.insert(rows: events, into: "events (id, type, kinds, source, chat_id, occurred_at, json)", logger: logger) { event, binds in
            binds.append(event.id)
            binds.append(event.type.rawValue)
            binds.append(event.kinds.map(\.rawValue).joined(separator: " "))
            binds.append(event.source)
            binds.append(event.chatID)
            binds.append(event.occurredAt)
            binds.append(event.json().compactString)
        }
        try await connection.insert(rows: deliveries, into: """
            deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at, digest_id)
            """, fixed: ["'pending'", "0"], logger: logger) { row, binds in
            binds.append(row.eventID)
            binds.append(row.rule)
            binds.append(row.sink)
            binds.append(row.orderingKey)
            binds.append(row.due)
            binds.append(now)
            binds.append(row.digestID)
        }
        try await connection.insert(
            rows: digestEvents, into: "digest_events (digest_id, event_id)", suffix: "ON CONFLICT DO NOTHING", logger: logger
        ) { row, binds in
            binds.append(row.digestID)
            binds.append(row.eventID)
        }
        try await connection.insert(
            rows: Array(throttles.values), into: "throttles (rule, ordering_key, until)",
            suffix: "ON CONFLICT (rule, ordering_key) DO UPDATE SET until = excluded.until", logger: logger
        ) { row, binds in
            binds.append(row.rule)
            binds.append(row.orderingKey)
            binds.append(row.until)
        }
        events.removeAll()
        deliveries.removeAll()
        digestEvents.removeAll()
        throttles.removeAll()
    }
}

extension PostgresConnection {
    /// Multi-row inserts of `rows`, each row's values appended by `bind`; only
    /// placeholders in the SQL text. `fixed` are constant SQL expressions placed after
    /// the first columns' placeholders in each tuple (for `status`, `attempts`), at the
    /// position their columns take in `table`'s column list: right after the fourth.
    func insert<Row>(
        rows: [Row], into table: String, fixed: [String] = [], suffix: String = "", logger: Logger,
        bind: (Row, inout PostgresBindings) -> Void
    ) async throws {
        guard let first = rows.first else { return }
        var probe = PostgresBindings()
        bind(first, &probe)
        let width = probe.count
        let perStatement = max(1, 30_000 / max(1, width))
        for batch in rows.chunked(perStatement) {
            var query = PostgresQuery(unsafeSQL: "")
            var tuples: [String] = []
            for row in batch {
                let base = query.binds.count
                bind(row, &query.binds)
                var values = (1...width).map { "$\(base + $0)" }
                if !fixed.isEmpty { values.insert(contentsOf: fixed, at: min(4, values.count)) }
                tuples.append("(" + values.joined(separator: ", ") + ")")
            }
            query.sql = "INSERT INTO \(table) VALUES \(tuples.joined(separator: ", ")) \(suffix)"
            try await run(query, logger: logger)
        }
    }
}
