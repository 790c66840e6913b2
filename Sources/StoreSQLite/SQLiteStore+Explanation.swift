import Foundation
import GRDB
import Store

extension SQLiteStore: EventExplanationStore {
    package func deliveryFacts(eventID: String) async throws -> EventDeliveryFacts {
        let own = try await deliveries(eventID: eventID)
        let memberships = try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.id, d.rule, d.sink, d.closes_at FROM digest_events e
                    JOIN digests d ON d.id = e.digest_id WHERE e.event_id = ? ORDER BY d.id
                    """,
                arguments: [eventID]
            ).map { row -> (Int64, String, String, Double) in (row["id"], row["rule"], row["sink"], row["closes_at"]) }
        }
        var digests: [DigestMembership] = []
        for (id, rule, sink, closesAt) in memberships {
            // The digest's own row carries its id (`digest_id`) and an event id of its own.
            let digestEventID = try await pool.read { db in
                try String.fetchOne(db, sql: "SELECT event_id FROM deliveries WHERE digest_id = ? LIMIT 1", arguments: [id])
            }
            let row = try await digestEventID.asyncMap { try await deliveries(sink: sink, eventID: $0).last } ?? nil
            digests.append(DigestMembership(
                digestID: id, rule: rule, sink: sink, closesAt: Date(storeValue: closesAt), delivery: row))
        }
        return EventDeliveryFacts(deliveries: own, digests: digests)
    }

    package func latestDelivery(
        rule: String, orderingKey: String, atOrBefore date: Date, excludingEventID: String
    ) async throws -> ThrottlingDelivery? {
        try await pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT event_id, sink, created_at FROM deliveries
                    WHERE rule = ? AND ordering_key = ? AND created_at <= ? AND event_id <> ?
                    ORDER BY id DESC LIMIT 1
                    """,
                arguments: [rule, orderingKey, date.storeValue, excludingEventID]
            ).map { row in
                ThrottlingDelivery(eventID: row["event_id"], sink: row["sink"], createdAt: Date(storeValue: row["created_at"]))
            }
        }
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
