import Foundation

/// What the store knows about what happened to one event after detection, for
/// `chatbridge explain`: the facts only; the verdicts are the rules' (``Rules``
/// `EventExplanation`).
package struct EventDeliveryFacts: Sendable, Hashable {
    /// The event's own outbox rows, oldest first.
    package var deliveries: [DeliveryRecord]
    /// The digests the event joined: (digest id, rule, sink, when it closes, and the
    /// digest's own delivery row once written).
    package var digests: [DigestMembership]

    package init(deliveries: [DeliveryRecord], digests: [DigestMembership]) {
        self.deliveries = deliveries
        self.digests = digests
    }
}

/// One digest an event joined.
package struct DigestMembership: Sendable, Hashable {
    package var digestID: Int64
    package var rule: String
    package var sink: String
    package var closesAt: Date
    /// The digest's delivery row (event id `digest-ID`), when written.
    package var delivery: DeliveryRecord?

    package init(digestID: Int64, rule: String, sink: String, closesAt: Date, delivery: DeliveryRecord?) {
        self.digestID = digestID
        self.rule = rule
        self.sink = sink
        self.closesAt = closesAt
        self.delivery = delivery
    }
}

/// The delivery that started a throttle window: the most recent delivery row of a rule
/// for an ordering key, written before a given moment.
package struct ThrottlingDelivery: Sendable, Hashable {
    package var eventID: String
    package var sink: String
    package var createdAt: Date

    package init(eventID: String, sink: String, createdAt: Date) {
        self.eventID = eventID
        self.sink = sink
        self.createdAt = createdAt
    }
}

/// The store's side of `chatbridge explain`.
package protocol EventExplanationStore: Sendable {
    /// The outbox rows and digests of the event `eventID`.
    func deliveryFacts(eventID: String) async throws -> EventDeliveryFacts
    /// The latest delivery row of `rule` for `orderingKey` written at or before `date`
    /// by another event than `excludingEventID`: what throttled a later match.
    func latestDelivery(rule: String, orderingKey: String, atOrBefore date: Date, excludingEventID: String) async throws
        -> ThrottlingDelivery?
}
