import Foundation
/// The honesty rules of events.md about chats that are missing from a complete poll:
/// pure decisions over counts, so that they can be tested with plain values.
package enum SnapshotRules {
    /// A chat is reported removed after it is missing from this many complete polls in a row.
    package static let missesBeforeRemoval = 2
    /// A mass vanish is believed after this many complete polls in a row show one.
    package static let suspiciousPollsBeforeBelief = 3

    /// What to do about the chats of the last snapshot that this complete poll did not list.
    package struct AbsencePlan: Sendable, Hashable {
        /// Chats to report as `chat.removed` and drop from the snapshot.
        package var removals: [String]
        /// Chats whose missing counter goes up (missing, not yet removed).
        package var stillMissing: [String]
        /// Whether this poll looked like a mass vanish (more than half the known chats gone).
        package var suspicious: Bool
        /// The source's new count of suspicious polls in a row.
        package var suspiciousStreak: Int
    }

    /// Decides about absences.
    ///
    /// - Parameters:
    ///   - knownCount: chats in the last complete snapshot.
    ///   - absent: the chats of that snapshot missing from this poll, with how many
    ///     complete polls in a row each had already been missing.
    ///   - suspiciousStreak: suspicious polls in a row before this one.
    ///
    /// A poll in which more than half the known chats vanish is suspicious (an API
    /// glitch that returns a short list looks exactly like this): its absences are
    /// not counted, so a glitch, even one that lasts two polls, never turns into a storm
    /// of `chat.removed` followed by `chat.added`. When the vanish persists for
    /// ``suspiciousPollsBeforeBelief`` complete polls in a row it is believed, and the
    /// chats are removed at once.
    package static func planAbsences(
        knownCount: Int, absent: [(id: String, missing: Int)], suspiciousStreak: Int
    ) -> AbsencePlan {
        let suspicious = knownCount > 0 && absent.count * 2 > knownCount
        if suspicious {
            let streak = suspiciousStreak + 1
            if streak >= suspiciousPollsBeforeBelief {
                return AbsencePlan(removals: absent.map(\.id), stillMissing: [], suspicious: true, suspiciousStreak: 0)
            }
            return AbsencePlan(removals: [], stillMissing: [], suspicious: true, suspiciousStreak: streak)
        }
        var removals: [String] = []
        var stillMissing: [String] = []
        for chat in absent {
            if chat.missing + 1 >= missesBeforeRemoval { removals.append(chat.id) } else { stillMissing.append(chat.id) }
        }
        return AbsencePlan(removals: removals, stillMissing: stillMissing, suspicious: false, suspiciousStreak: 0)
    }

    /// How long a source waits before its next poll after `consecutiveFailures` failed
    /// polls in a row: doubling from its interval, capped at ten intervals.
    package static func backoff(interval: Duration, consecutiveFailures: Int) -> Duration {
        guard consecutiveFailures > 0 else { return interval }
        let factor = 1 << min(consecutiveFailures, 4)  // 2, 4, 8, 16 → capped at 10 below
        return interval * min(factor, 10)
    }
}
