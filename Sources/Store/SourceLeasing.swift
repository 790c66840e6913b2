import Foundation

/// Who polls which source when several instances share one store (scale.md).
///
/// A store that several processes share hands each source to one instance at a time by
/// a lease: a row (holder, epoch, expiry) that the holder renews while it runs. Taking a
/// lease from another holder (its lease expired) increases the epoch, and every write of
/// a poll checks, inside its own transaction, that the epoch it began with is still the
/// current one: an instance paused past its lease commits nothing (``LeaseLost``).
///
/// A store that one process owns (SQLite) does not implement it: its poller polls every
/// source.
///
/// ```swift
/// if let leasing = store as? any SourceLeasing {
///     guard try await leasing.acquireLease(source: "main") != nil else { return }  // another instance polls it
/// }
/// ```
package protocol SourceLeasing: Sendable {
    /// This process's name among the instances (logs, `status`, metrics).
    var instanceName: String { get }
    /// How long a lease lasts without renewal.
    var leaseDuration: Duration { get }

    /// Takes the lease on `source` when nobody holds it or its holder's lease expired, or
    /// renews it when this process holds it already.
    ///
    /// - Returns: the lease now held, or `nil` when another instance holds it.
    func acquireLease(source: String) async throws -> SourceLease?

    /// Renews every lease this process holds and says this instance is alive; forgets the
    /// ones another instance took meanwhile.
    ///
    /// - Returns: the sources still held.
    @discardableResult
    func renewLeases() async throws -> Set<String>

    /// Gives up the lease on `source`, so that another instance may take it at once.
    func releaseLease(source: String) async throws

    /// Gives up every lease, the instance's row and the deliveries it claimed and did not
    /// attempt (graceful shutdown).
    func releaseAll() async throws

    /// How many sources each live instance should hold at most, so that load spreads
    /// over the instances: ⌈sources ÷ live instances⌉.
    func fairShare(sourceCount: Int) async throws -> Int

    /// The sources this process holds now.
    var heldSources: Set<String> { get }

    /// Every lease and every live instance, for `chatbridge status`.
    func leaseOverview() async throws -> LeaseOverview

    /// Deliveries this process has claimed and not yet finished, per sink (`/metrics`).
    func claimedDeliveries() async throws -> [String: Int]
}

/// One source's lease.
package struct SourceLease: Sendable, Hashable {
    package var source: String
    /// The instance that holds it.
    package var holder: String
    /// Increases every time the lease changes hands.
    package var epoch: Int64
    package var expiresAt: Date

    package init(source: String, holder: String, epoch: Int64, expiresAt: Date) {
        self.source = source
        self.holder = holder
        self.epoch = epoch
        self.expiresAt = expiresAt
    }
}

/// The instances sharing a store and the leases they hold.
package struct LeaseOverview: Sendable, Hashable {
    /// A running instance, as it last said it was alive.
    package struct Instance: Sendable, Hashable {
        package var name: String
        package var startedAt: Date
        package var lastSeenAt: Date
        package init(name: String, startedAt: Date, lastSeenAt: Date) {
            self.name = name
            self.startedAt = startedAt
            self.lastSeenAt = lastSeenAt
        }
    }

    package var instances: [Instance]
    package var leases: [SourceLease]
    /// The store's clock when this was read (leases expire by it).
    package var now: Date

    package init(instances: [Instance], leases: [SourceLease], now: Date) {
        self.instances = instances
        self.leases = leases
        self.now = now
    }
}

/// A poll's write was refused: another instance took the source's lease since this
/// poll began (this process was paused or cut off past its lease). Nothing of the poll
/// was stored; the instance that holds the lease now polls the source.
package struct LeaseLost: Error, Sendable, Hashable, CustomStringConvertible {
    package var source: String
    package init(source: String) { self.source = source }
    package var description: String {
        "lost the lease on source \(source) to another instance: this poll's results were not stored"
    }
}
