import ChatBridgeCore
import Foundation

/// The stored events, as `chatbridge events` and the tests read them.
package protocol EventLog: Sendable {
    /// Stored events matching `query`, in detection order.
    func events(_ query: EventQuery) async throws -> [StoredEvent]
    /// The stored event with this id, or `nil`.
    func event(id: String) async throws -> StoredEvent?
    /// The sequence number of the newest stored event (0 when none is).
    func lastEventSequence() async throws -> Int64
}

/// The outbox as people inspect and mend it: `deliveries`, `replay`, `status`.
package protocol DeliveryLog: Sendable {
    /// The delivery log, filtered: the most recent `limit` rows (all when `nil`), oldest first.
    func deliveries(status: String?, sink: String?, eventID: String?, limit: Int?) async throws -> [DeliveryRecord]
    /// Queues an event's deliveries again (all its rows, or one to `sink`).
    /// - Throws: ``ReplayError`` when no stored event has this id.
    func replay(eventID: String, sink: String?, now: Date) async throws -> Int
    /// Pending, due, dead and delivered rows per sink.
    func deliveryCounts(now: Date, recentSince: Date) async throws -> [String: SinkDeliveryCounts]
}

/// Retention: what ages out of a store (store.md).
package protocol StoreRetention: Sendable {
    /// Deletes finished deliveries, events without pending work, old polls and expired
    /// throttles older than `cutoff`, in short transactions of `batchSize` rows.
    func prune(olderThan cutoff: Date, now: Date, batchSize: Int, checkpoint: Bool) async throws -> PruneResult
}

/// Everything the rest of chatbridge sees of a store. The SQLite store implements it; a
/// second implementation passes the same conformance suite.
package typealias BridgeStore = SnapshotStore & DeliveryQueue & EventLog & DeliveryLog & StoreRetention

extension DeliveryLog {
    package func deliveries(
        status: String? = nil, sink: String? = nil, eventID: String? = nil, limit: Int? = nil
    ) async throws -> [DeliveryRecord] {
        try await deliveries(status: status, sink: sink, eventID: eventID, limit: limit)
    }
}
