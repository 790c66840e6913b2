import Foundation
import PostgresNIO
import Store

extension PostgresStore: EventExplanationStore {
    package func deliveryFacts(eventID: String) async throws -> EventDeliveryFacts {
        let own = try await deliveries(status: nil, sink: nil, eventID: eventID, limit: nil)
        let memberships = try await rows("""
            SELECT d.id, d.rule, d.sink, d.closes_at,
                   (SELECT event_id FROM deliveries WHERE digest_id = d.id LIMIT 1)
            FROM digest_events e JOIN digests d ON d.id = e.digest_id
            WHERE e.event_id = \(eventID) ORDER BY d.id
            """)
        var digests: [DigestMembership] = []
        for row in memberships {
            let (id, rule, sink, closesAt, digestEventID) = try row.decode((Int64, String, String, Date, String?).self)
            var delivery: DeliveryRecord?
            if let digestEventID {
                delivery = try await deliveries(status: nil, sink: sink, eventID: digestEventID, limit: nil).last
            }
            digests.append(DigestMembership(digestID: id, rule: rule, sink: sink, closesAt: closesAt, delivery: delivery))
        }
        return EventDeliveryFacts(deliveries: own, digests: digests)
    }

    package func latestDelivery(
        rule: String, orderingKey: String, atOrBefore date: Date, excludingEventID: String
    ) async throws -> ThrottlingDelivery? {
        try await rows("""
            SELECT event_id, sink, created_at FROM deliveries
            WHERE rule = \(rule) AND ordering_key = \(orderingKey) AND created_at <= \(date) AND event_id <> \(excludingEventID)
            ORDER BY id DESC LIMIT 1
            """).first.map { row in
            let (eventID, sink, createdAt) = try row.decode((String, String, Date).self)
            return ThrottlingDelivery(eventID: eventID, sink: sink, createdAt: createdAt)
        }
    }
}
