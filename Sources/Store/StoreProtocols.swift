import Foundation

// The store is the only state chatbridge has. Its seams are small protocols, so that
// the SQLite implementation can later be joined by a PostgreSQL one for several
// instances sharing one store.

/// One outbox row that is due: an (event, rule, sink) the dispatcher should attempt.
package struct DueDelivery: Sendable, Hashable {
    /// The row's id; increasing in detection order.
    package var id: Int64
    package var eventID: String
    /// The rule that matched, or `nil` when no rules are configured.
    package var rule: String?
    package var sink: String
    /// Attempts made so far (0 for a new row).
    package var attempts: Int
    /// The stored event's JSON text, without `rule`; for a digest's row, the digest's
    /// JSON (`{"id", "type": "digest", "rule", "count", "events"}`).
    package var eventJSON: String
    /// The digest this row delivers (its `eventID` is then the digest's UUIDv7), or `nil`.
    package var digestID: Int64?
    /// When the event was detected (its `occurred_at`), for the delivery-latency metric;
    /// `nil` for a digest or an event no longer stored.
    package var occurredAt: Date?

    package init(
        id: Int64, eventID: String, rule: String?, sink: String, attempts: Int, eventJSON: String, digestID: Int64? = nil,
        occurredAt: Date? = nil
    ) {
        self.id = id
        self.eventID = eventID
        self.rule = rule
        self.sink = sink
        self.attempts = attempts
        self.eventJSON = eventJSON
        self.digestID = digestID
        self.occurredAt = occurredAt
    }
}

/// What one delivery attempt came to, as the store records it.
package enum DeliveryAttemptResult: Sendable, Hashable {
    /// Delivered (2xx, exit 0, line written). `status` is the HTTP status or exit code.
    case delivered(status: Int?)
    /// Failed; try again no earlier than `notBefore`.
    case retry(notBefore: Date, status: Int?, error: String)
    /// Failed for good (4xx, redirect, attempts exhausted): kept, listed, replayable.
    case dead(status: Int?, error: String)
}

/// A change to one outbox row, as the dispatcher hands it to the store: the outcome of an
/// attempt, or a postponement (quiet hours) that is not an attempt.
package struct DeliveryUpdate: Sendable, Hashable {
    package enum Change: Sendable, Hashable {
        /// An attempt was made: `attempts` is the count including it.
        case attempted(DeliveryAttemptResult, attempts: Int)
        /// Not attempted: the row waits until `until` (the end of its rule's quiet hours),
        /// its attempt count unchanged.
        case postponed(until: Date)
    }

    package var deliveryID: Int64
    package var change: Change
    /// When it happened (the attempt's end).
    package var at: Date

    package init(deliveryID: Int64, change: Change, at: Date) {
        self.deliveryID = deliveryID
        self.change = change
        self.at = at
    }
}

/// The outbox, as the dispatcher sees it.
///
/// Rows are written by the poll's transaction; the dispatcher reads due rows in batches
/// and records outcomes in short transactions of several outcomes each, never holding
/// one across a network call. An outcome not yet recorded when the process dies is simply
/// attempted again (at least once).
package protocol DeliveryQueue: Sendable {
    /// Pending rows of `sink` whose next attempt is due at `now`, oldest first, at most
    /// `limit`, skipping `inFlight` rows and every row that has an older pending row for
    /// the same chat and sink (per-chat order survives retries). At most one row per chat.
    func dueDeliveries(sink: String, now: Date, excluding inFlight: Set<Int64>, limit: Int) async throws -> [DueDelivery]

    /// When the earliest pending row of `sink` falls due, or `nil` when none is pending.
    func nextAttemptDate(sink: String) async throws -> Date?

    /// Records several updates in one transaction. A row that is no longer pending
    /// (finished by another process meanwhile) is left alone.
    func record(_ updates: [DeliveryUpdate]) async throws
}

extension DeliveryQueue {
    /// Records one attempt at row `id`: `attempts` is the count including this attempt.
    package func record(_ result: DeliveryAttemptResult, deliveryID id: Int64, attempts: Int, at date: Date) async throws {
        try await record([DeliveryUpdate(deliveryID: id, change: .attempted(result, attempts: attempts), at: date)])
    }

}
