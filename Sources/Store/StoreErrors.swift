import Foundation
/// What one ``SQLiteStore/prune(olderThan:now:batchSize:checkpoint:)`` removed.
package struct PruneResult: Sendable, Hashable, CustomStringConvertible {
    /// Events deleted: older than the cutoff, with no delivery row left.
    package var events = 0
    /// Delivered and dead deliveries deleted: finished before the cutoff.
    package var deliveries = 0
    /// `polls` rows deleted: finished before the cutoff.
    package var polls = 0
    /// Throttle windows deleted: ended before `now`.
    package var throttles = 0
    /// Write transactions used; each deleted at most `batchSize` rows.
    package var batches = 0
    /// Whether the write-ahead log was checkpointed and truncated afterwards.
    package var checkpointed = false

    package init() {}

    /// Rows deleted, in all tables.
    package var total: Int { events + deliveries + polls + throttles }

    package var description: String {
        "\(events) events, \(deliveries) deliveries, \(polls) polls, \(throttles) throttles in \(batches) batches"
    }
}

/// The store could not take a write when asked (``SQLiteStore/checkWritable(timeout:)``).
package struct StoreNotWritable: Error, Sendable, Hashable, CustomStringConvertible {
    /// SQLite's reason (`database is locked`, `attempt to write a readonly database`, …);
    /// never the path or any stored content.
    package var reason: String
    package init(reason: String) { self.reason = reason }
    package var description: String { "store not writable: \(reason)" }
}

/// Why the store could not be opened or used, and which file.
package struct StoreError: Error, Sendable, CustomStringConvertible {
    package var path: String
    package var message: String
    /// Whether `message` names the path itself (`cannot create PATH: …`).
    package var namesPath: Bool

    package init(path: String, message: String, namesPath: Bool = false) {
        self.path = path
        self.message = message
        self.namesPath = namesPath
    }

    package var description: String { namesPath ? message : "store \(path): \(message)" }
}
