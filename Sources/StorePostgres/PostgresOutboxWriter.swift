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
/// ``OutboxPlanner`` asks its facts synchronously, so the writer reads them first: the
/// throttle window of each throttled rule for the ordering key, and the open digest of
/// each (rule, sink) a digest route names. An open digest is looked up under a
/// transaction-scoped advisory lock on its (rule, sink) and locked `FOR SHARE`, so that
/// two instances never open two digests for one window, and a dispatcher sealing it waits
/// for this transaction: a match is either in the digest it reads or opens a new one.
struct PostgresOutboxWriter {
    let connection: PostgresConnection
    let logger: Logger
    let router: EventRouter
    let now: Date

    func write(_ event: Event, orderingKey: String, into application: inout PollApplication) async throws {
        try await connection.run("""
            INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json)
            VALUES (\(event.id), \(event.type.rawValue), \(event.kinds.map(\.rawValue).joined(separator: " ")),
                    \(event.source), \(event.chatID), \(event.occurredAt), \(event.json().compactString))
            """, logger: logger)
        application.count(event)
        let routes = router(event)
        guard !routes.isEmpty else { return }

        var throttles: [String: Date] = [:]
        var digests: [String: Int64] = [:]
        for route in routes {
            guard let rule = route.rule else { continue }
            if route.throttle != nil, throttles[rule] == nil {
                let rows = try await connection.rows("""
                    SELECT until FROM throttles WHERE rule = \(rule) AND ordering_key = \(orderingKey)
                    """, logger: logger)
                if let until = try rows.first?.decode(Date.self) { throttles[rule] = until }
            }
            if route.digest != nil {
                for sink in route.sinks where digests[Self.digestKey(rule, sink)] == nil {
                    if let id = try await openDigest(rule: rule, sink: sink) { digests[Self.digestKey(rule, sink)] = id }
                }
            }
        }
        let facts = OutboxFacts(
            throttledUntil: { rule in throttles[rule] },
            openDigest: { rule, sink in digests[Self.digestKey(rule, sink)] })
        for decision in try OutboxPlanner.decisions(for: routes, now: now, facts: facts) {
            try await execute(decision, event: event, orderingKey: orderingKey, into: &application)
        }
    }

    private static func digestKey(_ rule: String, _ sink: String) -> String { "\(rule)\u{0}\(sink)" }

    private func openDigest(rule: String, sink: String) async throws -> Int64? {
        try await connection.run("""
            SELECT pg_advisory_xact_lock(hashtext('chatbridge.digest'), hashtext(\(rule + "/" + sink)))
            """, logger: logger)
        let rows = try await connection.rows("""
            SELECT id FROM digests WHERE rule = \(rule) AND sink = \(sink) AND NOT sealed AND closes_at > \(now)
            ORDER BY closes_at DESC LIMIT 1 FOR SHARE
            """, logger: logger)
        return try rows.first?.decode(Int64.self)
    }

    private func execute(
        _ decision: OutboxDecision, event: Event, orderingKey: String, into application: inout PollApplication
    ) async throws {
        switch decision {
        case .deliver(let rule, let sink, let due):
            try await connection.run("""
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at)
                VALUES (\(event.id), \(rule), \(sink), \(orderingKey), 'pending', 0, \(due), \(now))
                """, logger: logger)
            application.deliveryCount += 1
        case .startThrottle(let rule, let until):
            try await connection.run("""
                INSERT INTO throttles (rule, ordering_key, until) VALUES (\(rule), \(orderingKey), \(until))
                ON CONFLICT (rule, ordering_key) DO UPDATE SET until = excluded.until
                """, logger: logger)
        case .throttled(let rule, let until):
            application.suppressed.append(.init(eventID: event.id, rule: rule, until: until))
        case .joinDigest(_, _, let digestID):
            try await addEvent(event, toDigest: digestID)
        case .openDigest(let rule, let sink, let closesAt, let due):
            let rows = try await connection.rows("""
                INSERT INTO digests (rule, sink, opened_at, closes_at) VALUES (\(rule), \(sink), \(now), \(closesAt))
                RETURNING id
                """, logger: logger)
            guard let digestID = try rows.first?.decode(Int64.self) else { return }
            // The digest's row has an ordering key of its own, so that no chat's order waits for it.
            try await connection.run("""
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at, digest_id)
                VALUES (\(PostgresStore.digestEventID(digestID)), \(rule), \(sink), \(OrderingKey.digest(digestID)),
                        'pending', 0, \(due), \(now), \(digestID))
                """, logger: logger)
            application.deliveryCount += 1
            try await addEvent(event, toDigest: digestID)
        }
    }

    private func addEvent(_ event: Event, toDigest digestID: Int64) async throws {
        try await connection.run("""
            INSERT INTO digest_events (digest_id, event_id) VALUES (\(digestID), \(event.id)) ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}
