import ChatBridgeCore
import Foundation
import Logging
import PostgresNIO
import Store

extension PostgresStore {
    /// The lease as SQL interval text, for `clock_timestamp() + $n::interval`.
    var leaseInterval: String { Self.interval(leaseDuration) }

    static func interval(_ duration: Duration) -> String {
        "\(duration.clampedNanoseconds / 1_000_000) milliseconds"
    }

    /// Takes the lease on `source` when it is free or expired, renews it when this process
    /// holds it. Expiry is by the database's clock, so instances need not agree on time.
    ///
    /// An instance of the same name (`instance:`) takes its own lease back at once: that
    /// is the same instance restarted. Whatever the earlier process still had in hand is
    /// fenced off by the new epoch all the same.
    package func acquireLease(source: String) async throws -> SourceLease? {
        try await transaction { [self] connection in try await take(source: source, on: connection) }
    }

    /// Takes or renews the lease inside the caller's transaction; the lease row stays
    /// locked until that transaction ends.
    func take(source: String, on connection: PostgresConnection) async throws -> SourceLease? {
        let rows = try await connection.rows("""
            INSERT INTO leases AS l (source, holder, token, epoch, acquired_at, expires_at)
            VALUES (\(source), \(instanceName), \(token), 1, clock_timestamp(), clock_timestamp() + \(leaseInterval)::interval)
            ON CONFLICT (source) DO UPDATE SET
                holder = excluded.holder, token = excluded.token,
                epoch = CASE WHEN l.token = excluded.token THEN l.epoch ELSE l.epoch + 1 END,
                acquired_at = CASE WHEN l.token = excluded.token THEN l.acquired_at ELSE excluded.acquired_at END,
                expires_at = excluded.expires_at
            WHERE l.token = excluded.token OR l.holder = excluded.holder OR l.expires_at < clock_timestamp()
            RETURNING epoch, expires_at
            """, logger: logger)
        guard let row = rows.first else {
            // Held by another instance: when this process held it before, say so once.
            if held.withLock({ $0.removeValue(forKey: source) }) != nil {
                logger.warning("lost the lease on \(source) to another instance")
            }
            return nil
        }
        let (epoch, expiresAt) = try row.decode((Int64, Date).self)
        let previous = held.withLock { held in
            defer { held[source] = epoch }
            return held[source]
        }
        if let previous, previous != epoch {
            // Another instance held it in between: whatever this process cached is stale.
            logger.notice("took the lease on source \(source) again", metadata: ["epoch": "\(epoch)"])
        }
        return SourceLease(source: source, holder: instanceName, epoch: epoch, expiresAt: expiresAt)
    }

    /// Fences a poll's write: inside the write's transaction, locks the lease row and
    /// checks that the epoch this process holds is still the current one (renewing the
    /// expiry). A process that holds no lease on the source takes it here, when free, so
    /// that a store used without a lease loop (`run --once`, the tests) is fenced too.
    ///
    /// - Returns: the epoch the write happens under.
    /// - Throws: ``LeaseLost`` when another instance holds the source now.
    @discardableResult
    func fence(source: String, on connection: PostgresConnection) async throws -> Int64 {
        guard let epoch = held.withLock({ $0[source] }) else {
            guard let lease = try await take(source: source, on: connection) else { throw LeaseLost(source: source) }
            return lease.epoch
        }
        let rows = try await connection.rows("""
            UPDATE leases SET expires_at = greatest(expires_at, clock_timestamp() + \(leaseInterval)::interval)
            WHERE source = \(source) AND token = \(token) AND epoch = \(epoch)
            RETURNING epoch
            """, logger: logger)
        guard !rows.isEmpty else {
            held.withLock { _ = $0.removeValue(forKey: source) }
            throw LeaseLost(source: source)
        }
        return epoch
    }

    /// Renews every held lease and this instance's row in one statement each; forgets
    /// leases another instance took.
    @discardableResult
    package func renewLeases() async throws -> Set<String> {
        let mine = held.withLock { $0 }
        return try await transaction { [self] connection in
            try await connection.run("""
                INSERT INTO instances AS i (token, name, started_at, last_seen_at, expires_at)
                VALUES (\(token), \(instanceName), \(startedAt), clock_timestamp(), clock_timestamp() + \(leaseInterval)::interval)
                ON CONFLICT (token) DO UPDATE SET last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at
                """, logger: logger)
            guard !mine.isEmpty else { return [] }
            let sources = Array(mine.keys)
            let rows = try await connection.rows("""
                UPDATE leases SET expires_at = clock_timestamp() + \(leaseInterval)::interval
                WHERE token = \(token) AND source = ANY(\(sources))
                RETURNING source, epoch
                """, logger: logger)
            var kept: Set<String> = []
            for row in rows {
                let (source, epoch) = try row.decode((String, Int64).self)
                if mine[source] == epoch { kept.insert(source) }
            }
            let lost = Set(sources).subtracting(kept)
            if !lost.isEmpty {
                held.withLock { held in for source in lost { held.removeValue(forKey: source) } }
                logger.warning("lost the lease on \(lost.sorted().joined(separator: ", ")) to another instance")
            }
            return kept
        }
    }

    package func releaseLease(source: String) async throws {
        held.withLock { _ = $0.removeValue(forKey: source) }
        try await transaction { [self] connection in
            try await connection.run(
                "DELETE FROM leases WHERE source = \(source) AND token = \(token)", logger: logger)
        }
    }

    /// Hands back every lease, the instance's row and its unattempted delivery claims.
    package func releaseAll() async throws {
        held.withLock { $0.removeAll() }
        try await transaction { [self] connection in
            try await connection.run("DELETE FROM leases WHERE token = \(token)", logger: logger)
            try await connection.run("DELETE FROM instances WHERE token = \(token)", logger: logger)
            // Rows fetched and not attempted: the others may take them at once.
            try await connection.run("""
                UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL
                WHERE claimed_by = \(token) AND status = 'pending'
                """, logger: logger)
        }
    }

    package var heldSources: Set<String> { held.withLock { Set($0.keys) } }

    /// ⌈sources ÷ live instances⌉, counting this one even before its first heartbeat.
    package func fairShare(sourceCount: Int) async throws -> Int {
        let rows = try await rows("""
            SELECT count(*)::BIGINT FROM instances WHERE expires_at >= clock_timestamp() AND token <> \(token)
            """)
        let others = Int(try rows.first?.decode(Int64.self) ?? 0)
        let live = others + 1
        return max(1, (sourceCount + live - 1) / live)
    }

    package func leaseOverview() async throws -> LeaseOverview {
        try await transaction { [self] connection in
            let now = try await connection.rows("SELECT clock_timestamp()", logger: logger).first?.decode(Date.self) ?? Date()
            var instances: [LeaseOverview.Instance] = []
            for row in try await connection.rows("""
                SELECT name, started_at, last_seen_at FROM instances WHERE expires_at >= clock_timestamp() ORDER BY name
                """, logger: logger) {
                let (name, started, seen) = try row.decode((String, Date, Date).self)
                instances.append(.init(name: name, startedAt: started, lastSeenAt: seen))
            }
            var leases: [SourceLease] = []
            for row in try await connection.rows(
                "SELECT source, holder, epoch, expires_at FROM leases ORDER BY source", logger: logger) {
                let (source, holder, epoch, expires) = try row.decode((String, String, Int64, Date).self)
                leases.append(SourceLease(source: source, holder: holder, epoch: epoch, expiresAt: expires))
            }
            return LeaseOverview(instances: instances, leases: leases, now: now)
        }
    }

    package func claimedDeliveries() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await rows("""
            SELECT sink, count(*)::BIGINT FROM deliveries
            WHERE status = 'pending' AND claimed_by = \(token) AND claimed_until > clock_timestamp()
            GROUP BY sink
            """) {
            let (sink, count) = try row.decode((String, Int64).self)
            counts[sink] = Int(count)
        }
        return counts
    }
}
