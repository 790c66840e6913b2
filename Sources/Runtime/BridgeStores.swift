import ChatBridgeConfig
import Foundation
import Logging
import Store
import StorePostgres
import StoreSQLite

/// Opens the store a configuration names: a SQLite file, or a PostgreSQL database that
/// several instances share (`store: postgres://…`, scale.md).
///
/// ```swift
/// let store = try await BridgeStores.open(configuration, logger: logger)
/// ```
package enum BridgeStores {
    /// - Parameters:
    ///   - synchronousFull: SQLite `synchronous = FULL` (ignored by PostgreSQL).
    ///   - readOnly: SQLite opened read-only (the read-only commands).
    /// - Throws: ``StoreError`` naming the store (a URL with `***` for its password).
    package static func open(
        _ configuration: ChatBridgeConfiguration, synchronousFull: Bool = false, readOnly: Bool = false,
        logger: Logger
    ) async throws(StoreError) -> any RuntimeStore {
        if let url = configuration.postgresStore {
            return try await PostgresStore.open(
                url: url, instance: configuration.instance, lease: configuration.lease,
                claimDuration: claimDuration(configuration), logger: logger)
        }
        return try SQLiteStore(path: configuration.storePath, synchronousFull: synchronousFull, readOnly: readOnly)
    }

    /// How long a delivery stays claimed by the instance attempting it: longer than any
    /// attempt can take (the longest sink timeout), and at least one lease.
    static func claimDuration(_ configuration: ChatBridgeConfiguration) -> Duration {
        let longest = configuration.sinks.values.compactMap { sink -> Duration? in
            switch sink.kind {
            case .webhook(let webhook): webhook.timeout
            case .exec(let exec): exec.timeout
            case .http(let http): http.timeout
            case .standardOutput: nil
            }
        }.max() ?? .seconds(10)
        return max(configuration.lease, longest * 2 + .seconds(5))
    }
}
