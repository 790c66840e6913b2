import Foundation
import ChatBridgeCore
import Detect
/// What the store knows of a source: its baseline, its filters and its health.
package struct SourceRecord: Sendable, Hashable {
    package var name: String
    /// The filters the snapshot was taken with; a different one means a new baseline.
    package var filterFingerprint: String
    package var baselineDone: Bool
    /// The error object of the outstanding `account.error`, `nil` when none is.
    package var accountError: JSONValue?
    package var consecutiveFailures: Int
    package var suspiciousStreak: Int
    package var lastPollAt: Date?
    package var lastOutcome: String?
    package var lastError: String?
    package var lastSuccessAt: Date?
    package var failingSince: Date?
    /// How many polls of the source committed, in a store that several instances share
    /// (`nil` in a store one process owns): a poller trusts its in-memory index only
    /// while this is still what it was when the index was cached.
    package var pollSequence: Int64?

    package init(name: String, filterFingerprint: String) {
        self.name = name
        self.filterFingerprint = filterFingerprint
        baselineDone = false
        consecutiveFailures = 0
        suspiciousStreak = 0
    }
}

/// A new or changed chat of the poll in progress, set aside until the poll completes.
package struct StagedChat: Sendable, Hashable {
    package var id: String
    package var accountID: String?
    package var accountType: String?
    /// The item's bytes as the API sent them.
    package var raw: Data
    package var fingerprint: UInt64
    package init(id: String, accountID: String?, accountType: String?, raw: Data, fingerprint: UInt64) {
        self.id = id
        self.accountID = accountID
        self.accountType = accountType
        self.raw = raw
        self.fingerprint = fingerprint
    }
}

/// A poll that completed: every page was read. What the store needs to apply it.
package struct CompletedPoll: Sendable {
    package var source: String
    package var filterFingerprint: String
    /// This poll is the source's baseline (first poll, or its filters changed).
    package var isBaseline: Bool
    /// With a baseline: report every chat as `chat.added` (`baseline: emit`).
    package var emitBaseline: Bool
    package var startedAt: Date
    package var finishedAt: Date
    package var pages: Int
    package var items: Int
    /// Chats of the last snapshot this poll listed again after missing them.
    package var reappeared: [String]
    /// What to do about the chats this poll did not list (``SnapshotRules/planAbsences``).
    package var absences: SnapshotRules.AbsencePlan
    /// Account id and type for `account.recovered`, when the source's filters name them.
    package var accountID: String?
    package var accountType: String?

    /// How the poll's record reads in `polls` and `status`.
    package var outcome: String {
        isBaseline ? "baseline" : (absences.suspicious ? "complete (suspicious)" : "complete")
    }

    package init(
        source: String, filterFingerprint: String, isBaseline: Bool, emitBaseline: Bool, startedAt: Date,
        finishedAt: Date, pages: Int, items: Int, reappeared: [String], absences: SnapshotRules.AbsencePlan,
        accountID: String? = nil, accountType: String? = nil
    ) {
        self.source = source
        self.filterFingerprint = filterFingerprint
        self.isBaseline = isBaseline
        self.emitBaseline = emitBaseline
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.pages = pages
        self.items = items
        self.reappeared = reappeared
        self.absences = absences
        self.accountID = accountID
        self.accountType = accountType
    }
}

/// A poll that did not complete, as the store records it.
package struct FailedPoll: Sendable {
    package var source: String
    package var filterFingerprint: String
    package var startedAt: Date
    package var finishedAt: Date
    package var pages: Int
    package var items: Int
    /// One line: what went wrong and where (never a secret).
    package var error: String
    /// The API's error object when the API said the account or key needs a person
    /// (401/403): the first such poll of an outage emits `account.error`.
    package var accountError: JSONValue?
    package var accountID: String?
    package var accountType: String?
    /// The poll was stopped (the process shutting down), not failed: its `polls` row is a
    /// failed one whose error says "stopped" (store.md's outcomes), while the source's
    /// health stays what the polls before it made it.
    package var wasStopped: Bool

    package init(
        source: String, filterFingerprint: String, startedAt: Date, finishedAt: Date, pages: Int, items: Int,
        error: String, accountError: JSONValue? = nil, accountID: String? = nil, accountType: String? = nil,
        wasStopped: Bool = false
    ) {
        self.wasStopped = wasStopped
        self.source = source
        self.filterFingerprint = filterFingerprint
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.pages = pages
        self.items = items
        self.error = error
        self.accountError = accountError
        self.accountID = accountID
        self.accountType = accountType
    }
}

/// What applying a poll wrote.
package struct PollApplication: Sendable, Hashable {
    /// Events stored, by kind (and by type for `account.*`), for metrics and logs.
    package var eventCount: Int = 0
    package var kindCounts: [String: Int] = [:]
    /// Events stored, by type (`chat.changed`, `account.error`...): each event once.
    package var typeCounts: [String: Int] = [:]
    /// Change kinds of the events stored (`unread.increased`...), kinds only.
    package var changeKindCounts: [String: Int] = [:]
    /// Outbox rows written.
    package var deliveryCount: Int = 0
    /// Chat rows written (inserted, updated or deleted).
    package var chatWrites: Int = 0
    /// Fingerprints of chats now in the snapshot whose fingerprint changed; removed ids.
    package var updatedFingerprints: [String: UInt64] = [:]
    package var removed: [String] = []
    /// Matches that wrote nothing because their rule was throttled for the chat.
    package var suppressed: [Suppression] = []
    /// The source's ``SourceRecord/pollSequence`` after this poll (shared stores only).
    package var pollSequence: Int64?

    package init() {}

    /// A rule that matched an event and was throttled (rules.md `throttle`).
    package struct Suppression: Sendable, Hashable {
        package var eventID: String
        package var rule: String
        /// When the rule may deliver for this chat again.
        package var until: Date
        package init(eventID: String, rule: String, until: Date) {
            self.eventID = eventID
            self.rule = rule
            self.until = until
        }
    }

    /// Counts a stored event (by each of its kinds, or by its type when it has none).
    package mutating func count(_ event: Event) {
        eventCount += 1
        typeCounts[event.type.rawValue, default: 0] += 1
        for kind in event.kinds { changeKindCounts[kind.rawValue, default: 0] += 1 }
        if event.kinds.isEmpty { kindCounts[event.type.rawValue, default: 0] += 1 }
        for kind in event.kinds { kindCounts[kind.rawValue, default: 0] += 1 }
    }
}

extension SourceRecord {
    /// The source's health after a complete poll: baselined with these filters, no
    /// failure streak, the absence plan's suspicious streak. One transition for every store.
    package mutating func complete(_ poll: CompletedPoll, at now: Date) {
        filterFingerprint = poll.filterFingerprint
        baselineDone = true
        consecutiveFailures = 0
        suspiciousStreak = poll.absences.suspiciousStreak
        lastPollAt = now
        lastOutcome = poll.outcome
        lastError = nil
        lastSuccessAt = now
        failingSince = nil
    }

    /// The source's health after a poll that did not complete: one more failure, failing
    /// since the first of the streak. The snapshot and the baseline stay as they were.
    /// A stopped poll leaves the record as it was: a restart is not an outage
    /// (`chatbridge status` would otherwise report it as one until the next poll), and
    /// its time would read as the time of the last poll's outcome.
    package mutating func fail(_ poll: FailedPoll, at now: Date) {
        guard !poll.wasStopped else { return }
        lastPollAt = now
        consecutiveFailures += 1
        lastPollAt = now
        lastOutcome = "failed"
        lastError = poll.error
        failingSince = failingSince ?? poll.startedAt
    }
}
