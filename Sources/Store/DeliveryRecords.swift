import Foundation
import ChatBridgeCore
/// One row of the delivery log (`chatbridge deliveries`).
package struct DeliveryRecord: Sendable, Hashable {
    package var id: Int64
    package var eventID: String
    package var rule: String?
    package var sink: String
    /// `pending`, `delivered` or `dead`.
    package var status: String
    package var attempts: Int
    /// The last HTTP status or exit code.
    package var lastStatus: Int?
    /// The last error (its first 1 KiB).
    package var lastError: String?
    /// When the next attempt is due; `nil` once the delivery is finished.
    package var nextAttemptAt: Date?
    package var deliveredAt: Date?

    package init(
        id: Int64, eventID: String, rule: String?, sink: String, status: String, attempts: Int,
        lastStatus: Int? = nil, lastError: String? = nil, nextAttemptAt: Date? = nil, deliveredAt: Date? = nil
    ) {
        self.id = id
        self.eventID = eventID
        self.rule = rule
        self.sink = sink
        self.status = status
        self.attempts = attempts
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.deliveredAt = deliveredAt
    }

    /// The JSON line of `chatbridge deliveries`: `event_id`, `rule`, `sink`, `status`,
    /// `attempts`, `last_status`, `last_error`, `next_attempt_at`, `delivered_at` (times
    /// in ISO 8601, absent values `null`).
    package var json: JSONValue {
        .object([
            "event_id": .string(eventID),
            "rule": rule.map(JSONValue.string) ?? .null,
            "sink": .string(sink),
            "status": .string(status),
            "attempts": .int(Int64(attempts)),
            "last_status": lastStatus.map { .int(Int64($0)) } ?? .null,
            "last_error": lastError.map(JSONValue.string) ?? .null,
            "next_attempt_at": nextAttemptAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            "delivered_at": deliveredAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
        ])
    }
}

/// `chatbridge replay` named an event the store does not have.
package struct ReplayError: Error, Sendable, Hashable, CustomStringConvertible {
    package var eventID: String
    package init(eventID: String) { self.eventID = eventID }
    package var description: String { "no stored event has the id \(eventID)" }
}

/// Counts of the outbox for one sink, as `chatbridge status` and `/metrics` show them.
package struct SinkDeliveryCounts: Sendable, Hashable {
    package var pending: Int = 0
    /// Pending and due now (not waiting for a retry).
    package var due: Int = 0
    package var dead: Int = 0
    /// Dead deliveries that finished since the `recentSince` date asked for and were not
    /// delivered since by a replay (what `status` calls for attention to).
    package var recentlyDead: Int = 0
    package var delivered: Int = 0
    package var oldestPendingAt: Date?

    package init(
        pending: Int = 0, due: Int = 0, dead: Int = 0, recentlyDead: Int = 0, delivered: Int = 0,
        oldestPendingAt: Date? = nil
    ) {
        self.pending = pending
        self.due = due
        self.dead = dead
        self.recentlyDead = recentlyDead
        self.delivered = delivered
        self.oldestPendingAt = oldestPendingAt
    }
}
