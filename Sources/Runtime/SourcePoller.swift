import ChatBridgeCore
import Foundation
import Logging
import ChatBridgeConfig
import Detect
import Rules
import Store
import Unipile
import UnipileScanner

/// How one poll of a source ended.
package enum PollOutcome: Sendable, Hashable {
    /// Every page was read and the snapshot applied.
    case complete(events: Int, deliveries: Int, baseline: Bool)
    /// The poll was abandoned; the stored snapshot is unchanged.
    case failed(reason: String, authentication: Bool)

    package var isComplete: Bool {
        if case .complete = self { return true }
        return false
    }
}

/// Polls one source: reads every page, sets aside what changed, and applies the
/// complete poll to the store in one transaction (events.md, "Snapshot rules"), through
/// one ``PollSession``.
///
/// The poller keeps the fingerprints of the last snapshot in memory between polls, so
/// that an unchanged poll reads nothing from the database and writes only its `polls`
/// row. The cache is a copy of what the store holds; after any doubt (a failed apply) it
/// is dropped and read again.
package actor SourcePoller {
    package let configuration: SourceConfiguration
    private let client: UnipileClient
    private let store: any SnapshotStore
    private let emitBaseline: Bool
    private let logger: Logger
    private let clock: @Sendable () -> Date
    private var cache: SnapshotIndex?
    /// The source's poll sequence the cache belongs to, in a store several instances
    /// share: another instance's commit in between makes the cache stale.
    private var cacheSequence: Int64?
    /// Where each poll's outcome, duration, chat count and events are counted (`/metrics`).
    private let metrics: BridgeMetrics?

    package init(
        configuration: SourceConfiguration, client: UnipileClient, store: any SnapshotStore, emitBaseline: Bool,
        logger: Logger, metrics: BridgeMetrics? = nil, clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.configuration = configuration
        var client = client
        if let metrics {
            let source = configuration.name
            client.responseObserver = { status in metrics.recordUnipileResponse(source: source, status: status) }
        }
        self.client = client
        self.store = store
        self.emitBaseline = emitBaseline
        self.metrics = metrics
        self.clock = clock
        var logger = logger
        logger[metadataKey: "source"] = .string(configuration.name)
        self.logger = logger
    }

    /// Account id and type to put on `account.*` events, when the filters name exactly one.
    private var accountIdentity: (id: String?, type: String?) {
        (configuration.accountIDs.count == 1 ? configuration.accountIDs[0] : nil, configuration.accountType?.rawValue)
    }

    /// How far a poll got, for the record of a failed one.
    private struct Progress {
        var pages = 0
        var items = 0
    }

    /// One complete poll, or a failed one. Never throws: failures are outcomes, recorded
    /// in the store and logged.
    package func poll(router: @escaping EventRouter) async -> PollOutcome {
        let startedAt = clock()
        var progress = Progress()
        do {
            return try await completePoll(startedAt: startedAt, progress: &progress, router: router)
        } catch {
            return await recordFailure(error, startedAt: startedAt, progress: progress, router: router)
        }
    }

    private func completePoll(
        startedAt: Date, progress: inout Progress, router: @escaping EventRouter
    ) async throws -> PollOutcome {
        var session = try await PollSession.begin(
            store: store, source: configuration.name, filterFingerprint: configuration.filterFingerprint)
        if session.filtersChanged { logger.notice("filters changed: this poll is a new baseline") }
        var index = try await startingIndex(for: session)
        let clock = self.clock
        let seed = store.fingerprintSeed
        // Chats whose bytes are a stored chat's are only located and fingerprinted.
        let known = index.count > 0 ? index.fingerprintLookup : nil
        let summary = try await client.fetchAllChats(
            ChatListQuery(source: configuration), fingerprintSeed: seed, recognising: known.map { known in { known.contains($0) } }
        ) { page in
            let staged = session.isBaseline
                ? Self.baselineChats(of: page) : try Self.changedChats(of: page, index: &index, fingerprintSeed: seed)
            try await session.stage(staged, now: clock())
        }
        progress = Progress(pages: summary.pages, items: summary.items)
        try Task.checkCancellation()

        let poll = completedPoll(session: session, index: index, startedAt: startedAt, progress: progress)
        let applied: PollApplication
        do {
            applied = try await session.commit(poll, router: router)
        } catch {
            cache = nil
            throw error
        }
        let observedCount = session.baselineChatCount ?? index.observedCount
        // The index moves into the cache: no copy of its arrays when the cache is updated.
        updateCache(after: poll, applied: applied, index: consume index)
        report(poll, applied: applied, chats: observedCount)
        if let failures = session.record?.consecutiveFailures, failures > 0 {
            logger.notice(
                "source recovered: a complete poll after failed ones",
                metadata: ["failed_polls": .stringConvertible(failures)])
        }
        return .complete(events: applied.eventCount, deliveries: applied.deliveryCount, baseline: poll.isBaseline)
    }

    /// The chats of `page` to stage: new, changed, or listed again (a chat listed twice in
    /// one poll counts once; its later copy wins), in page order. Marks every chat of the
    /// page as listed in `index`.
    ///
    /// Recognised chats (the bytes of a stored chat) count as listed and unchanged; one
    /// the index does not take (gone, or listed before in this poll) is scanned and
    /// observed like the rest. Should a chat scanned in full turn out to be listed again
    /// while recognised chats come after it on the page, those are scanned too, and the
    /// ones that are that chat are staged after it, so that a later unchanged copy still
    /// wins.
    static func changedChats(
        of page: ChatPage, index: inout SnapshotIndex, fingerprintSeed seed: UInt64
    ) throws -> [StagedChat] {
        var items = page.items
        var claimedRecognised: [RecognisedItem] = []
        if !page.recognised.isEmpty {
            let claimed = index.claim(page.recognised.map(\.fingerprint))
            var rescanned = false
            for (recognised, isClaimed) in zip(page.recognised, claimed) {
                if isClaimed {
                    claimedRecognised.append(recognised)
                } else {
                    items.append(try page.item(recognised, fingerprintSeed: seed))
                    rescanned = true
                }
            }
            if rescanned { items.sort { $0.range.lowerBound < $1.range.lowerBound } }
        }
        let observations = index.observe(keys: items.map(\.key), fingerprints: items.map(\.fingerprint))
        var reported = zip(items, observations).filter { $0.1 != .unchanged }.map(\.0)
        // Where each chat listed again on this page was first listed again.
        var repeats: [ChatKey: Int] = [:]
        for (item, observation) in zip(items, observations) where observation == .repeated && repeats[item.key] == nil {
            repeats[item.key] = item.range.lowerBound
        }
        if let firstRepeat = repeats.values.min() {
            let later = try claimedRecognised.filter { $0.range.lowerBound > firstRepeat }
                .map { try page.item($0, fingerprintSeed: seed) }
                .filter { recognised in repeats[recognised.key].map { $0 < recognised.range.lowerBound } ?? false }
            if !later.isEmpty {
                reported += later
                reported.sort { $0.range.lowerBound < $1.range.lowerBound }
            }
        }
        return reported.map { item in
            StagedChat(
                id: page.id(of: item), accountID: page.accountID(of: item), accountType: page.accountType(of: item),
                raw: page.rawData(of: item), fingerprint: item.fingerprint)
        }
    }

    /// The chats of a baseline's `page`: all of them, in page order. A baseline compares
    /// with nothing (its index is empty, so nothing is recognised either) and its index is
    /// not cached, so the chats are not observed: the store keeps a chat listed twice once,
    /// with its later copy, and counts the snapshot (``PollSession/baselineChatCount``).
    static func baselineChats(of page: ChatPage) -> [StagedChat] {
        page.items.map { item in
            StagedChat(
                id: page.id(of: item), accountID: page.accountID(of: item), accountType: page.accountType(of: item),
                raw: page.rawData(of: item), fingerprint: item.fingerprint)
        }
    }

    /// The index this poll compares with: the cached one when there is one.
    private func startingIndex(for session: PollSession) async throws -> SnapshotIndex {
        if session.isBaseline {
            cache = nil
            return SnapshotIndex()
        }
        if var index = cache, cacheSequence == session.record?.pollSequence {
            index.resetObservations()
            return index
        }
        return try await session.loadIndex()
    }

    /// What the complete poll saw, with the absences planned by ``SnapshotRules``.
    private func completedPoll(
        session: PollSession, index: SnapshotIndex, startedAt: Date, progress: Progress
    ) -> CompletedPoll {
        let absent = index.absent()
        let plan = SnapshotRules.planAbsences(
            knownCount: index.count, absent: absent, suspiciousStreak: session.record?.suspiciousStreak ?? 0)
        if plan.suspicious, plan.removals.isEmpty {
            logger.warning(
                "\(absent.count) of \(index.count) known chats missing from this poll: holding removals until confirmed",
                metadata: ["suspicious_streak": .stringConvertible(plan.suspiciousStreak)])
        } else if plan.suspicious {
            logger.warning(
                "\(absent.count) of \(index.count) known chats missing for \(SnapshotRules.suspiciousPollsBeforeBelief) complete polls in a row: removing them")
        }
        let identity = accountIdentity
        return CompletedPoll(
            source: configuration.name, filterFingerprint: configuration.filterFingerprint,
            isBaseline: session.isBaseline, emitBaseline: emitBaseline, startedAt: startedAt, finishedAt: clock(),
            pages: progress.pages, items: progress.items, reappeared: index.reappeared(), absences: plan,
            accountID: identity.id, accountType: identity.type)
    }

    /// Logs and counts a complete poll.
    private func report(_ poll: CompletedPoll, applied: PollApplication, chats: Int) {
        let elapsed = clock().timeIntervalSince(poll.startedAt)
        logger.log(
            level: applied.eventCount > 0 || poll.isBaseline ? .info : .debug,
            "poll complete",
            metadata: [
                "pages": .stringConvertible(poll.pages), "chats": .stringConvertible(poll.items),
                "events": .stringConvertible(applied.eventCount), "deliveries": .stringConvertible(applied.deliveryCount),
                "baseline": .stringConvertible(poll.isBaseline), "seconds": .stringConvertible((elapsed * 1000).rounded() / 1000),
            ])
        for suppression in applied.suppressed {
            logger.info(
                "match throttled: nothing sent",
                metadata: [
                    "rule": "\(suppression.rule)", "event": "\(suppression.eventID)",
                    "until": "\(Timestamp.iso8601(suppression.until))",
                ])
        }
        metrics?.recordCompletePoll(
            source: poll.source, duration: .seconds(exactly: elapsed), chats: chats,
            kindCounts: applied.changeKindCounts, typeCounts: applied.typeCounts, finishedAt: poll.finishedAt)
        metrics?.recordSuppressed(applied.suppressed)
    }

    /// Records a poll that did not complete, logs it and says how it ended.
    private func recordFailure(
        _ error: any Error, startedAt: Date, progress: Progress, router: @escaping EventRouter
    ) async -> PollOutcome {
        if let lost = error as? LeaseLost {
            // Fenced: another instance holds the source now; it records what it polls.
            cache = nil
            logger.warning("\(lost)")
            return .failed(reason: "\(lost)", authentication: false)
        }
        let failure = error as? PollFailure
        let reason = failure.map { "\($0)" } ?? (error is CancellationError ? "stopped" : "\(error)")
        let apiError = failure?.apiError
        let authentication = apiError?.isAuthenticationFailure ?? false
        let identity = accountIdentity
        let failed = FailedPoll(
            source: configuration.name, filterFingerprint: configuration.filterFingerprint, startedAt: startedAt,
            finishedAt: clock(), pages: progress.pages, items: progress.items, error: reason,
            accountError: authentication ? apiError?.json : nil,
            accountID: identity.id, accountType: identity.type, wasStopped: Self.isStop(error))
        // A stopped poll is recorded too (store.md): in a task of its own, which the
        // cancellation that stopped the poll does not reach.
        let store = self.store
        let recorded = await Task { try await store.recordFailedPoll(failed, router: router) }.result
        switch recorded {
        case .success(let applied):
            // The account.error of an outage.
            metrics?.recordEvents(source: configuration.name, typeCounts: applied.typeCounts, kindCounts: applied.changeKindCounts)
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
        metrics?.recordFailedPoll(
            source: configuration.name, duration: .seconds(exactly: clock().timeIntervalSince(startedAt)), stopped: failed.wasStopped)
        return .failed(reason: reason, authentication: authentication)
    }

    /// Whether a poll ended because it was stopped, not because anything failed.
    private static func isStop(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        if case .cancelled? = error as? PollFailure { return true }
        return false
    }

    /// Keeps the in-memory fingerprints in step with what the transaction just stored.
    /// Takes `next`, the index this poll worked with, as the cache for the next poll, brought
    /// up to what the poll stored. It is consumed, not copied: a copy's first change would
    /// duplicate every array of the index (at 100,000 chats, megabytes copied and faulted in
    /// just to record 1,000 changes).
    private func updateCache(after poll: CompletedPoll, applied: PollApplication, index next: consuming SnapshotIndex) {
        if poll.isBaseline {
            cache = nil  // read again on the next poll: the baseline was written in SQL
            return
        }
        for id in poll.absences.stillMissing { next.updateMissing(id, reset: false) }
        for id in poll.reappeared { next.updateMissing(id, reset: true) }
        for (id, fingerprint) in applied.updatedFingerprints {
            next.set(id, SnapshotEntry(fingerprint: fingerprint, missing: 0))
        }
        for id in applied.removed { next.set(id, nil) }
        cache = next
        cacheSequence = applied.pollSequence
    }
}
