import Foundation
import Logging

/// How one poll of a source ended.
public enum PollOutcome: Sendable, Hashable {
    /// Every page was read and the snapshot applied.
    case complete(events: Int, deliveries: Int, baseline: Bool)
    /// The poll was abandoned; the stored snapshot is unchanged.
    case failed(reason: String, authentication: Bool)

    public var isComplete: Bool {
        if case .complete = self { return true }
        return false
    }
}

/// Polls one source: reads every page, sets aside what changed, and applies the
/// complete poll to the store in one transaction (events.md, "Snapshot rules").
///
/// The poller keeps the digests of the last snapshot in memory between polls, so that
/// an unchanged poll reads nothing from the database and writes only its `polls` row.
/// The cache is a copy of what the store holds; after any doubt (a failed apply) it is
/// dropped and read again.
public actor SourcePoller {
    public let configuration: SourceConfiguration
    private let client: UnipileClient
    private let store: SQLiteStore
    private let emitBaseline: Bool
    private let logger: Logger
    private var cache: SnapshotIndex?
    /// How many bytes of chats a baseline writes per transaction: large enough that the
    /// index pages are not rewritten hundreds of times, small enough to stay out of the
    /// way of the dispatcher's writes and to keep memory flat.
    static let baselineBatchBytes = 16 << 20
    /// Where each poll's outcome, duration, chat count and events are counted (`/metrics`).
    private let metrics: BridgeMetrics?

    public init(
        configuration: SourceConfiguration, client: UnipileClient, store: SQLiteStore, emitBaseline: Bool,
        logger: Logger, metrics: BridgeMetrics? = nil
    ) {
        self.configuration = configuration
        self.client = client
        self.store = store
        self.emitBaseline = emitBaseline
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "source"] = .string(configuration.name)
        self.logger = logger
    }

    /// Account id and type to put on `account.*` events, when the filters name exactly one.
    private var accountIdentity: (id: String?, type: String?) {
        (configuration.accountIDs.count == 1 ? configuration.accountIDs[0] : nil, configuration.accountType?.rawValue)
    }

    /// One complete poll, or a failed one. Never throws: failures are outcomes, recorded
    /// in the store and logged.
    public func poll(router: @escaping EventRouter) async -> PollOutcome {
        let startedAt = Date()
        let source = configuration.name
        let fingerprint = configuration.filterFingerprint
        var pages = 0
        var items = 0
        do {
            let record = try await store.sourceRecord(source)
            let isBaseline = record == nil || record?.baselineDone == false || record?.filterFingerprint != fingerprint
            if let record, record.baselineDone, record.filterFingerprint != fingerprint {
                logger.notice("filters changed: this poll is a new baseline")
            }
            var index: SnapshotIndex
            if isBaseline {
                index = SnapshotIndex()
                cache = nil
            } else if let cache {
                index = cache
                index.resetObservations()
            } else {
                index = try await store.loadSnapshotIndex(source: source)
            }
            try await store.discardStaged(source: source)
            if isBaseline { try await store.beginBaseline(source: source, filterFingerprint: fingerprint) }

            var baselineBatch: [StagedChat] = []
            var baselineBytes = 0
            let store = self.store
            let summary = try await client.fetchAllChats(
                ChatListQuery(source: configuration), digestSeed: store.digestSeed
            ) { page in
                var staged: [StagedChat] = []
                for item in page.items {
                    // A chat listed twice in one poll counts once; its later copy wins.
                    if index.observe(id: item.id, digest: item.digest) == .unchanged { continue }
                    staged.append(StagedChat(
                        id: item.id, accountID: item.accountID, accountType: item.accountType,
                        raw: page.rawData(of: item), digest: item.digest))
                }
                if isBaseline {
                    // Few large transactions: every commit rewrites the index pages it
                    // touched, and a baseline's ids arrive in random order.
                    baselineBatch.append(contentsOf: staged)
                    baselineBytes += staged.reduce(0) { $0 + $1.raw.count }
                    if baselineBytes >= Self.baselineBatchBytes {
                        try await store.storeBaselineChats(source: source, chats: baselineBatch)
                        baselineBatch.removeAll(keepingCapacity: true)
                        baselineBytes = 0
                    }
                } else {
                    try await store.stage(source: source, chats: staged)
                }
            }
            try await store.storeBaselineChats(source: source, chats: baselineBatch)
            pages = summary.pages
            items = summary.items
            try Task.checkCancellation()

            let absent = index.absent()
            let reappeared = index.reappeared()
            let plan = SnapshotRules.planAbsences(
                knownCount: index.count, absent: absent, suspiciousStreak: record?.suspiciousStreak ?? 0)
            if plan.suspicious {
                logger.warning(
                    "\(absent.count) of \(index.count) known chats missing from this poll: holding removals until confirmed",
                    metadata: ["suspicious_streak": "\(plan.suspiciousStreak)"])
            }
            let identity = accountIdentity
            let poll = CompletedPoll(
                source: source, filterFingerprint: fingerprint, isBaseline: isBaseline, emitBaseline: emitBaseline,
                startedAt: startedAt, finishedAt: Date(), pages: pages, items: items, reappeared: reappeared,
                absences: plan, accountID: identity.id, accountType: identity.type)
            let applied: PollApplication
            do {
                applied = try await store.applyCompletePoll(poll, router: router)
            } catch {
                cache = nil
                throw error
            }
            updateCache(after: poll, applied: applied, index: index)
            logger.log(
                level: applied.eventCount > 0 || isBaseline ? .info : .debug,
                "poll complete",
                metadata: [
                    "pages": "\(pages)", "chats": "\(items)", "events": "\(applied.eventCount)",
                    "deliveries": "\(applied.deliveryCount)", "baseline": "\(isBaseline)",
                    "seconds": "\(String(format: "%.3f", Date().timeIntervalSince(startedAt)))",
                ])
            metrics?.recordCompletePoll(
                source: source, duration: .seconds(Date().timeIntervalSince(startedAt)), chats: index.observedCount,
                kindCounts: applied.kindCounts, finishedAt: poll.finishedAt)
            return .complete(events: applied.eventCount, deliveries: applied.deliveryCount, baseline: isBaseline)
        } catch {
            let failure = error as? PollFailure
            let reason = failure.map { "\($0)" } ?? (error is CancellationError ? "stopped" : "\(error)")
            let apiError = failure?.apiError
            let authentication = apiError?.isAuthenticationFailure ?? false
            let identity = accountIdentity
            let failed = FailedPoll(
                source: source, filterFingerprint: fingerprint, startedAt: startedAt, finishedAt: Date(),
                pages: pages, items: items, error: reason,
                accountError: authentication ? apiError?.json : nil,
                accountID: identity.id, accountType: identity.type)
            // A stopped poll is recorded too (store.md): in a task of its own, which the
            // cancellation that stopped the poll does not reach.
            let store = self.store
            let recorded = await Task { try await store.recordFailedPoll(failed, router: router) }.result
            switch recorded {
            case .success(let applied):
                metrics?.recordEvents(applied.kindCounts)  // the account.error of an outage
                if applied.eventCount > 0 {
                    logger.error("account needs attention: \(reason)")
                } else if Self.isStop(error) {
                    logger.debug("poll stopped before it completed; nothing changed")
                } else {
                    logger.warning("poll failed: \(reason)")
                }
            case .failure(let recordError):
                logger.error("poll failed (\(reason)), and recording it failed too: \(recordError)")
            }
            metrics?.recordFailedPoll(source: source, duration: .seconds(Date().timeIntervalSince(startedAt)))
            return .failed(reason: reason, authentication: authentication)
        }
    }

    /// Whether a poll ended because it was stopped, not because anything failed.
    private static func isStop(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if case .cancelled? = error as? PollFailure { return true }
        return false
    }

    /// Keeps the in-memory digests in step with what the transaction just stored.
    private func updateCache(after poll: CompletedPoll, applied: PollApplication, index: SnapshotIndex) {
        if poll.isBaseline {
            cache = nil  // read again on the next poll: the baseline was written in SQL
            return
        }
        var next = index
        for id in poll.absences.stillMissing { next.updateMissing(id, reset: false) }
        for id in poll.reappeared { next.updateMissing(id, reset: true) }
        for (id, digest) in applied.updatedDigests { next.set(id, SnapshotEntry(digest: digest, missing: 0)) }
        for id in applied.removed { next.set(id, nil) }
        cache = next
    }
}
