import Foundation

// The store is the only state chatbridge has. Its seams are small protocols, so that
// the SQLite implementation can later be joined by a PostgreSQL one for several
// instances sharing one store.

/// One outbox row that is due: an (event, rule, sink) the dispatcher should attempt.
public struct DueDelivery: Sendable, Hashable {
    /// The row's id; increasing in detection order.
    public var id: Int64
    public var eventID: String
    /// The rule that matched, or `nil` when no rules are configured.
    public var rule: String?
    public var sink: String
    /// Attempts made so far (0 for a new row).
    public var attempts: Int
    /// The stored event's JSON text, without `rule`.
    public var eventJSON: String

    public init(id: Int64, eventID: String, rule: String?, sink: String, attempts: Int, eventJSON: String) {
        self.id = id
        self.eventID = eventID
        self.rule = rule
        self.sink = sink
        self.attempts = attempts
        self.eventJSON = eventJSON
    }
}

/// What one delivery attempt came to, as the store records it.
public enum DeliveryAttemptResult: Sendable, Hashable {
    /// Delivered (2xx, exit 0, line written). `status` is the HTTP status or exit code.
    case delivered(status: Int?)
    /// Failed; try again no earlier than `notBefore`.
    case retry(notBefore: Date, status: Int?, error: String)
    /// Failed for good (4xx, redirect, attempts exhausted): kept, listed, replayable.
    case dead(status: Int?, error: String)
}

/// The outbox, as the dispatcher sees it.
///
/// Rows are written by the poll's transaction; the dispatcher reads due rows and records
/// each outcome in a short transaction of its own, never holding one across a network
/// call.
public protocol DeliveryQueue: Sendable {
    /// Pending rows of `sink` whose next attempt is due at `now`, oldest first, at most
    /// `limit`, skipping `inFlight` rows and every row that has an older pending row for
    /// the same chat and sink (per-chat order survives retries).
    func dueDeliveries(sink: String, now: Date, excluding inFlight: Set<Int64>, limit: Int) async throws -> [DueDelivery]

    /// When the earliest pending row of `sink` falls due, or `nil` when none is pending.
    func nextAttemptDate(sink: String) async throws -> Date?

    /// Records one attempt at row `id`: `attempts` is the count including this attempt.
    func record(_ result: DeliveryAttemptResult, deliveryID id: Int64, attempts: Int, at date: Date) async throws
}
