import ChatBridgeCore
import Detect
import Foundation
import Rules

/// The snapshot side of a store, as a poll sees it: what a ``PollSession`` calls.
///
/// A store executes decisions and makes none: which chats changed is decided by the
/// poller's ``SnapshotIndex``, what each change means by ``EventDetector``, which
/// absences count by ``SnapshotRules``, where each event goes and when by the rules'
/// router and ``OutboxPlanner``. An implementation carries those out, and guarantees that
/// a complete poll is applied in one transaction: all of it or none of it.
///
/// SQLite (`StoreSQLite`) implements it; every implementation passes the store
/// conformance suite of the tests.
package protocol SnapshotStore: Sendable {
    /// The key of chat fingerprints: random per store, so that whoever writes chat names
    /// cannot predict a fingerprint.
    var fingerprintSeed: UInt64 { get }

    /// The stored record of `source`, or `nil` before its first poll.
    func sourceRecord(_ source: String) async throws -> SourceRecord?

    /// Every stored source record, by name.
    func sourceRecords() async throws -> [SourceRecord]

    /// The chats of the last complete snapshot as the API sent them; of one source or all.
    func snapshotChats(source: String?) async throws -> [(source: String, chat: JSONValue)]

    /// The fingerprints and missing counters of `source`'s last complete snapshot.
    func loadSnapshotIndex(source: String) async throws -> SnapshotIndex

    /// Forgets what an earlier poll of `source` had staged and did not apply.
    func discardStaged(source: String) async throws

    /// Starts a baseline: forgets the snapshot of `source`, marks it not yet baselined,
    /// and deletes whatever an earlier baseline of `source` that was cut short had written.
    func beginBaseline(source: String, filterFingerprint: String) async throws

    /// Writes chats of a baseline in progress (not a snapshot until
    /// ``applyCompletePoll(_:router:)`` marks the baseline done), in listing order, and
    /// records in `keys` what ``storeBaselineKeys(source:keys:)`` will need of them.
    /// A store that writes each chat whole (key and body in one row) leaves `keys` as it is.
    func appendBaselineChats(source: String, chats: [StagedChat], now: Date, keys: inout BaselineKeys) async throws

    /// Writes the keys of a baseline whose chats are all appended, sorted, each chat once
    /// with its copy listed last (``BaselineKeys/plan()``), and deletes the bodies of the
    /// copies listed earlier. Called once, just before ``applyCompletePoll(_:router:)``.
    ///
    /// - Returns: how many chats the baseline's snapshot holds (each chat once).
    func storeBaselineKeys(source: String, keys: BaselineKeys) async throws -> Int

    /// Sets aside new or changed chats of a poll in progress; nothing a reader sees.
    func stage(source: String, chats: [StagedChat]) async throws

    /// Applies a complete poll in one transaction: staged chats, missing counters,
    /// removals, the events ``EventDetector`` makes of them, and the outbox rows that
    /// `router` and ``OutboxPlanner`` decide.
    func applyCompletePoll(_ poll: CompletedPoll, router: @escaping EventRouter) async throws -> PollApplication

    /// Records a poll that did not complete; the snapshot is untouched. Stores the
    /// `account.error` that ``EventDetector/accountEvent(outstanding:failure:complete:accountID:accountType:)``
    /// calls for, with its outbox rows.
    func recordFailedPoll(_ poll: FailedPoll, router: @escaping EventRouter) async throws -> PollApplication
}

/// One poll of one source against a store: begin → stage pages → commit, or fail.
///
/// The session decides nothing the pure stages decide; it holds the order of the
/// calls, so that the poller and the tests drive a store the same way.
///
/// ```swift
/// var session = try await PollSession.begin(store: store, source: "main", filterFingerprint: filters)
/// for page in pages { try await session.stage(page) }
/// let applied = try await session.commit(poll, router: rules.router)
/// ```
package struct PollSession: Sendable {
    package let store: any SnapshotStore
    package let source: String
    package let filterFingerprint: String
    /// The source as the store knew it when the poll began (`nil` before its first poll).
    package let record: SourceRecord?
    /// Whether this poll is the source's baseline (``SnapshotRules/needsBaseline(baselineDone:storedFilters:filters:)``).
    package let isBaseline: Bool
    /// How many bytes of chats a baseline appends per transaction: one or two pages of the
    /// API, so that memory stays flat (only the keys are held until the end). Each
    /// transaction rewrites the bodies' last, partly filled page: at 100k chats 256 KB
    /// batches write 1.3% more than 1 MB ones, for 1.4 MB less peak RSS.
    package static let baselineBatchBytes = 256 << 10
    /// How many bytes of new or changed chats a poll holds before it sets them aside in
    /// the store: a usual poll stages once, in one transaction, when it commits (instead
    /// of a transaction for every page that had a change); a poll in which much changed
    /// stages in batches of this size, so memory stays flat.
    package static let stagingBatchBytes = 4 << 20

    /// This session's ``stagingBatchBytes``.
    private let stagingLimit: Int
    private var pending: [StagedChat] = []
    private var pendingBytes = 0
    /// A baseline's keys so far: written once, sorted, when it commits.
    private var baselineKeys = BaselineKeys()
    /// After a baseline commits: how many chats its snapshot holds (each chat once).
    package private(set) var baselineChatCount: Int?

    private init(
        store: any SnapshotStore, source: String, filterFingerprint: String, record: SourceRecord?, stagingLimit: Int
    ) {
        self.store = store
        self.stagingLimit = stagingLimit
        self.source = source
        self.filterFingerprint = filterFingerprint
        self.record = record
        isBaseline = SnapshotRules.needsBaseline(
            baselineDone: record?.baselineDone, storedFilters: record?.filterFingerprint, filters: filterFingerprint)
    }

    /// Begins a poll of `source`: reads its record, drops anything an earlier poll left
    /// staged, and for a baseline forgets the old snapshot.
    ///
    /// - Parameter stagingBatchBytes: how many bytes of changed chats to hold before
    ///   setting them aside in the store (``stagingBatchBytes`` unless a test wants batches).
    package static func begin(
        store: any SnapshotStore, source: String, filterFingerprint: String,
        stagingBatchBytes: Int = PollSession.stagingBatchBytes
    ) async throws -> PollSession {
        let record = try await store.sourceRecord(source)
        let session = PollSession(
            store: store, source: source, filterFingerprint: filterFingerprint, record: record,
            stagingLimit: stagingBatchBytes)
        try await store.discardStaged(source: source)
        if session.isBaseline { try await store.beginBaseline(source: source, filterFingerprint: filterFingerprint) }
        return session
    }

    /// Whether this baseline replaces a snapshot taken with other filters.
    package var filtersChanged: Bool {
        guard let record, record.baselineDone else { return false }
        return record.filterFingerprint != filterFingerprint
    }

    /// The snapshot index this poll compares with: empty for a baseline.
    package func loadIndex() async throws -> SnapshotIndex {
        isBaseline ? SnapshotIndex() : try await store.loadSnapshotIndex(source: source)
    }

    /// Sets aside the new or changed chats of one page, in batches: a baseline's bodies go
    /// straight into the snapshot, a few pages per transaction, and their keys are held
    /// until the poll commits; a later poll's chats go into the store's staging, most often
    /// all at once when the poll commits.
    package mutating func stage(_ chats: [StagedChat], now: Date) async throws {
        guard !chats.isEmpty else { return }
        for position in chats.indices { pendingBytes += chats[position].raw.count }
        pending.append(contentsOf: chats)
        if pendingBytes >= (isBaseline ? Self.baselineBatchBytes : stagingLimit) {
            try await flush(now: now)
        }
    }

    private mutating func flush(now: Date) async throws {
        guard !pending.isEmpty else { return }
        if isBaseline {
            try await store.appendBaselineChats(source: source, chats: pending, now: now, keys: &baselineKeys)
        } else {
            try await store.stage(source: source, chats: pending)
        }
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
    }

    /// Applies the complete poll in one transaction; a baseline's keys are written just
    /// before it (until that transaction marks the baseline done, a baseline cut short is
    /// started again from nothing).
    package mutating func commit(_ poll: CompletedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await flush(now: poll.finishedAt)
        if isBaseline {
            let keys = baselineKeys
            baselineKeys = BaselineKeys()
            baselineChatCount = try await store.storeBaselineKeys(source: source, keys: keys)
        }
        return try await store.applyCompletePoll(poll, router: router)
    }

    /// Records that the poll did not complete; the snapshot stays as it was.
    package func fail(_ poll: FailedPoll, router: @escaping EventRouter) async throws -> PollApplication {
        try await store.recordFailedPoll(poll, router: router)
    }
}
