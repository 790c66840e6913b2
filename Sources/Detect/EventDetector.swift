import ChatBridgeCore
import Foundation

/// Turns what one poll of a source saw into events (events.md): pure, with the time and
/// the ids passed in.
///
/// A store walks the chats a complete poll staged and hands each pair of (last stored
/// chat, chat as listed now) to ``changed(chatID:accountID:accountType:previous:current:)``;
/// the event that comes back (if any) is what the store writes. Every decision about
/// what is an event lives here and in ``SnapshotRules``, none in a store.
///
/// ```swift
/// var ids = EventIDGenerator()
/// let detector = EventDetector(source: "main", now: now) { ids.next(now: now) }
/// detector.changed(chatID: "c1", accountID: nil, accountType: nil, previous: nil, current: chat)  // chat.added
/// ```
package struct EventDetector {
    package let source: String
    /// The poll's end: every event of one poll carries the same `occurred_at`.
    package let now: Date
    private let makeID: () -> String

    package init(source: String, now: Date, makeID: @escaping () -> String) {
        self.source = source
        self.now = now
        self.makeID = makeID
    }

    /// The event for one chat this poll listed: `chat.added` when there was no previous
    /// one, `chat.changed` when a field changed (with its kinds), `nil` when nothing did.
    package func changed(
        chatID: String, accountID: String?, accountType: String?, previous: JSONValue?, current: JSONValue
    ) -> Event? {
        guard let previous else {
            return added(chatID: chatID, accountID: accountID, accountType: accountType, chat: current)
        }
        let diff = ChatDiff(
            previous: previous.objectValue ?? JSONObject(), current: current.objectValue ?? JSONObject(), now: now)
        guard !diff.isEmpty else { return nil }
        return Event(
            id: makeID(), type: .chatChanged, kinds: diff.kinds, occurredAt: now, source: source,
            accountID: accountID, accountType: accountType, chatID: chatID, chat: current, previous: previous,
            changes: diff.changes)
    }

    /// A `chat.added`: a chat seen for the first time, or every chat of a baseline with
    /// `baseline: emit`.
    package func added(chatID: String, accountID: String?, accountType: String?, chat: JSONValue) -> Event {
        Event(
            id: makeID(), type: .chatAdded, kinds: [.chatAdded], occurredAt: now, source: source,
            accountID: accountID, accountType: accountType, chatID: chatID, chat: chat)
    }

    /// A `chat.removed`, carrying the last stored chat as both `chat` and `previous`.
    package func removed(chatID: String, accountID: String?, accountType: String?, last: JSONValue) -> Event {
        Event(
            id: makeID(), type: .chatRemoved, kinds: [.chatRemoved], occurredAt: now, source: source,
            accountID: accountID, accountType: accountType, chatID: chatID, chat: last, previous: last)
    }

    /// The `account.*` event a poll's outcome calls for, given the outstanding error the
    /// store holds: the first failure of an outage that needs a person makes
    /// `account.error`, later ones of the same outage none, and the first complete poll
    /// after it `account.recovered`.
    ///
    /// - Parameters:
    ///   - outstanding: the error object of the `account.error` not yet recovered, or `nil`.
    ///   - failure: this poll's error object when it failed with 401/403; `nil` for a
    ///     complete poll. Ignored when `complete` is false and it is `nil` (any other failure).
    ///   - complete: whether this poll completed.
    package func accountEvent(
        outstanding: JSONValue?, failure: JSONValue?, complete: Bool, accountID: String?, accountType: String?
    ) -> AccountTransition {
        if complete {
            guard let outstanding else { return AccountTransition(event: nil, outstanding: nil) }
            let event = Event(
                id: makeID(), type: .accountRecovered, kinds: [], occurredAt: now, source: source,
                accountID: accountID, accountType: accountType, error: outstanding)
            return AccountTransition(event: event, outstanding: nil)
        }
        guard let failure, outstanding == nil else { return AccountTransition(event: nil, outstanding: outstanding) }
        let event = Event(
            id: makeID(), type: .accountError, kinds: [], occurredAt: now, source: source,
            accountID: accountID, accountType: accountType, error: failure)
        return AccountTransition(event: event, outstanding: failure)
    }

    /// What a poll does to a source's account state.
    package struct AccountTransition {
        /// The event to store, if any.
        package var event: Event?
        /// The outstanding error after this poll (what the store keeps).
        package var outstanding: JSONValue?
    }
}

/// The key that keeps deliveries of one chat (or one source's account events) in order
/// per sink, and that throttles count by: `source/chat_id`, or `source` alone.
package enum OrderingKey {
    package static func chat(source: String, chatID: String) -> String { "\(source)/\(chatID)" }
    package static func account(source: String) -> String { source }
    package static func digest(_ id: Int64) -> String { "digest/\(id)" }
}

extension SnapshotRules {
    /// Whether this poll of a source is a new baseline: its first poll, a baseline that
    /// never completed, or filters that changed since the snapshot was taken.
    package static func needsBaseline(baselineDone: Bool?, storedFilters: String?, filters: String) -> Bool {
        guard let baselineDone, let storedFilters else { return true }
        return !baselineDone || storedFilters != filters
    }
}
