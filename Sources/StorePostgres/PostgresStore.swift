import ChatBridgeConfig
import ChatBridgeCore
import Foundation
import Logging
import PostgresNIO
import Store
import Synchronization

/// A PostgreSQL database that several chatbridge instances share (scale.md).
///
/// The same store interface as ``SQLiteStore`` with the same behaviour (the store
/// conformance suite runs on both), plus what sharing needs:
///
/// - **Source leases with fencing** (``SourceLeasing``): a poll's writes commit only while
///   the lease epoch this process holds is still the current one, checked in the write's
///   own transaction with the lease row locked.
/// - **Delivery claims**: ``dueDeliveries(sink:now:excluding:limit:)`` claims the rows it
///   returns for ``claimDuration`` with `FOR UPDATE SKIP LOCKED`; only the oldest pending
///   row of each (sink, ordering key) can be claimed, so one row per chat is in flight
///   across all instances.
/// - Digests are opened under an advisory lock and sealed with the digest row locked, so
///   that no match is lost or split between instances.
///
/// Connections come from one pooled `PostgresClient`, run by a task the store owns and
/// cancels when it goes away. Every value reaches the server as a bound parameter.
///
/// ```swift
/// let store = try await PostgresStore.open(url: url, instance: "worker-1", lease: .seconds(30), logger: logger)
/// ```
package final class PostgresStore: Sendable {
    /// The URL with `***` for the password: how the store is named in messages.
    package let displayName: String
    let client: PostgresClient
    private let runTask: Task<Void, Never>
    let logger: Logger
    /// The key of chat fingerprints, random per database (read once when opened).
    package var fingerprintSeed: UInt64 { seed.withLock { $0 } }
    private let seed = Mutex<UInt64>(0)
    /// This process's name among the instances sharing the database.
    package let instanceName: String
    /// Distinguishes this process from an earlier one of the same name.
    let token: String
    package let leaseDuration: Duration
    /// How long a claimed delivery stays with this instance before others may attempt it.
    package let claimDuration: Duration
    let eventIDs = Mutex(EventIDGenerator())
    /// The lease epoch this process holds, per source.
    let held = Mutex<[String: Int64]>([:])
    let startedAt = Date()

    /// Connects, creates or migrates the schema (under an advisory lock, so that instances
    /// starting together do not race), and reads the fingerprint seed.
    ///
    /// - Parameters:
    ///   - schema: a schema of its own to keep the tables in (created when missing), or
    ///     `nil` for the connection's default (`public`).
    ///   - claimDuration: how long a delivery this instance took stays with it; more than
    ///     the longest attempt (a sink's timeout). Default: the lease plus one minute.
    /// - Throws: ``StoreError`` naming the URL (never its password) and why.
    package static func open(
        url: PostgresStoreURL, instance: String? = nil, lease: Duration = .seconds(30), claimDuration: Duration? = nil,
        schema: String? = nil, logger: Logger = Logger(label: "chatbridge.postgres")
    ) async throws(StoreError) -> PostgresStore {
        let display = url.description
        if let schema, !Self.isPlainIdentifier(schema) {
            throw StoreError(path: display, message: "schema '\(schema)' may only hold a-z, 0-9 and _")
        }
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password?.value,
            database: url.database, tls: Self.tls(url.tls))
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 10
        // A session that stops in the middle of a transaction for longer than a lease (a
        // frozen or suspended instance) is ended by the server: the lease row it locked
        // must not keep the other instances from taking its sources over (its own commit
        // then fails, and the new epoch fences it off).
        configuration.options.additionalStartupParameters = [
            ("idle_in_transaction_session_timeout", "\(lease.clampedNanoseconds / 1_000_000)ms")
        ]
        if let schema { configuration.options.additionalStartupParameters.append(("search_path", schema)) }
        let client = PostgresClient(configuration: configuration, backgroundLogger: Logger(label: "chatbridge.postgres.pool") { _ in SwiftLogNoOpLogHandler() })
        let store = PostgresStore(
            displayName: display, client: client, logger: logger,
            instance: instance ?? Self.defaultInstanceName(), lease: lease,
            claimDuration: claimDuration ?? lease + .seconds(60))
        do {
            try await store.migrate(schema: schema)
            let seed = try await store.readFingerprintSeed()
            store.seed.withLock { $0 = seed }
        } catch {
            throw StoreError(path: display, message: Self.reason(error))
        }
        return store
    }

    private init(
        displayName: String, client: PostgresClient, logger: Logger, instance: String, lease: Duration,
        claimDuration: Duration
    ) {
        self.displayName = displayName
        self.client = client
        // Several instances log into one place: the store's lines (a lost lease, the
        // store out of reach) say which instance too, as the bridge's do.
        var logger = logger
        logger[metadataKey: "instance"] = .string(instance)
        self.logger = logger
        self.instanceName = instance
        self.leaseDuration = lease
        self.claimDuration = claimDuration
        token = UUID().uuidString.lowercased()
        runTask = Task { await client.run() }
    }

    deinit { runTask.cancel() }

    /// Stops the connection pool. The store cannot be used afterwards.
    package func close() {
        runTask.cancel()
    }

    /// `HOST-PID`: the default name of an instance.
    package static func defaultInstanceName() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }

    static func isPlainIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63
            && text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(text.unicodeScalars.first!)
    }

    private static func tls(_ mode: PostgresStoreURL.TLSMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable:
            return .disable
        case .prefer:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .prefer(configuration)
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .require(configuration)
        case .verifyFull:
            return .require(.makeClientConfiguration())
        }
    }

    /// One line saying why a database call failed: the server's message and SQLSTATE, or
    /// the connection problem. Never a query's parameters nor the password.
    package static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + state
            }
            switch error.code {
            case .connectionError, .serverClosedConnection, .uncleanShutdown:
                return "cannot reach the database" + (error.underlying.map { ": \($0)" } ?? "")
            case .clientClosedConnection, .poolClosed:
                return "the connection pool is closed"
            default:
                return "database error \(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
            }
        }
        if let error = error as? StoreError { return error.message }
        if let error = error as? DatabaseUnreachable { return error.description }
        return "\(error)"
    }

    /// Makes the next event id: UUIDv7, increasing within this process.
    func nextEventID(now: Date) -> String {
        eventIDs.withLock { $0.next(now: now) }
    }

    // MARK: Transactions

    /// How long a call waits for a pooled connection before it gives up and says the
    /// database is unreachable (the pool itself would queue it for a minute).
    static let connectionWait: Duration = .seconds(5)

    /// Runs `body` on a pooled connection, waiting at most ``connectionWait`` for one.
    func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let leased = LeaseFlag()
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await self.client.withConnection { connection in
                    leased.set()
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: Self.connectionWait)
                if !leased.isSet { throw DatabaseUnreachable(waited: Self.connectionWait) }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }

    /// Runs `body` in one transaction on one pooled connection: committed when it returns,
    /// rolled back when it throws (its error is rethrown as it was).
    func transaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = logger
        return try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Runs a statement on a pooled connection and collects its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let logger = logger
        return try await withConnection { connection in
            try await connection.query(query, logger: logger).collect()
        }
    }
}

/// No connection to the database came within the wait: it is down or unreachable.
package struct DatabaseUnreachable: Error, Sendable, CustomStringConvertible {
    package var waited: Duration
    package var description: String { "no connection to the database within \(waited) (down or unreachable)" }
}

/// Whether a pooled connection was handed over yet.
private final class LeaseFlag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}

extension PostgresConnection {
    /// Runs a statement and collects its rows.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }

    /// Runs a statement, reading whatever rows it returns.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }

    /// Runs a statement whose first column of one row is a count (or any integer).
    func integer(_ query: PostgresQuery, logger: Logger) async throws -> Int64? {
        try await rows(query, logger: logger).first?.decode(Int64?.self)
    }
}

extension PostgresStore: EventLog, DeliveryLog, StoreRetention, SnapshotStore, DeliveryQueue, SourceLeasing {}
