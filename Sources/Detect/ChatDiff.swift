import Foundation
import ChatBridgeCore

/// The semantic difference between two versions of one chat: pure, no I/O.
///
/// ```swift
/// let diff = ChatDiff(previous: stored, current: received, now: Date())
/// diff.kinds     // [.unreadIncreased, .chatActivity]
/// diff.changes   // [unread_count 0 → 3, timestamp …]
/// ```
///
/// A field that only switches between `1` and `true` (or `0` and `false`), or between
/// `3` and `3.0`, is no change: the API sends booleans either way.
package struct ChatDiff: Sendable, Hashable {
    package var kinds: [ChangeKind]
    package var changes: [FieldChange]

    /// Whether anything changed at all.
    package var isEmpty: Bool { changes.isEmpty }

    package init(previous: JSONObject, current: JSONObject, now: Date) {
        var changes: [FieldChange] = []
        for (position, member) in current.members.enumerated() {
            let before = Self.member(member.key, of: previous, near: position)
            if !Self.sameValue(before, member.value) {
                changes.append(FieldChange(field: member.key, from: before ?? .null, to: member.value))
            }
        }
        for (position, member) in previous.members.enumerated()
        where !member.value.isNull && Self.member(member.key, of: current, near: position) == nil {
            changes.append(FieldChange(field: member.key, from: member.value, to: .null))
        }
        var kinds = Set<ChangeKind>()
        for change in changes {
            kinds.formUnion(Self.kinds(of: change, now: now))
        }
        self.changes = changes
        self.kinds = kinds.sorted { $0.order < $1.order }
    }

    /// The value of `object`'s member `key`, looked for first at `position`: two copies of
    /// a chat list their fields in the same order, so the lookup is mostly one comparison
    /// instead of a scan.
    private static func member(_ key: String, of object: JSONObject, near position: Int) -> JSONValue? {
        let members = object.members
        if position < members.count, members[position].key == key { return members[position].value }
        return object[key]
    }

    /// Kinds that one changed field implies; `.chatUpdated` when the change fits no
    /// named kind.
    static func kinds(of change: FieldChange, now: Date) -> [ChangeKind] {
        switch change.field {
        case "unread_count":
            guard let from = number(change.from) ?? (change.from.isNull ? 0 : nil),
                  let to = number(change.to) ?? (change.to.isNull ? 0 : nil)
            else { return [.chatUpdated] }
            if to > from { return [.unreadIncreased] }
            if to < from { return to == 0 ? [.unreadCleared] : [.unreadDecreased] }
            return [.chatUpdated]
        case "archived":
            return truthy(change.from) == truthy(change.to)
                ? [.chatUpdated] : [truthy(change.to) ? .chatArchived : .chatUnarchived]
        case "pinned":
            return truthy(change.from) == truthy(change.to)
                ? [.chatUpdated] : [truthy(change.to) ? .chatPinned : .chatUnpinned]
        case "muted_until":
            let wasMuted = Muting.isMuted(change.from, at: now)
            let isMuted = Muting.isMuted(change.to, at: now)
            switch (wasMuted, isMuted) {
            case (false, true): return [.chatMuted]
            case (true, false): return [.chatUnmuted]
            case (true, true): return [.chatMuteChanged]
            case (false, false): return [.chatUpdated]
            }
        case "name":
            return [.chatRenamed]
        case "timestamp":
            if change.from.isNull, !change.to.isNull { return [.chatActivity] }
            if let from = instant(change.from), let to = instant(change.to), to > from { return [.chatActivity] }
            return [.chatUpdated]
        case "read_only":
            return [.chatReadOnlyChanged]
        case "folder":
            return [.chatMoved]
        default:
            return [.chatUpdated]
        }
    }

    /// JSON equality in which `1`/`true`, `0`/`false` and `3`/`3.0` are the same value.
    package static func sameValue(_ a: JSONValue?, _ b: JSONValue) -> Bool {
        guard let a else { return b.isNull }
        switch (a, b) {
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            for member in x {
                guard let other = y[member.key], sameValue(member.value, other) else { return false }
            }
            return true
        case (.array(let x), .array(let y)):
            guard x.count == y.count else { return false }
            return zip(x, y).allSatisfy { sameValue($0, $1) }
        case (.bool(let x), .int(let y)), (.int(let y), .bool(let x)):
            return (y == 1 && x) || (y == 0 && !x)
        case (.bool(let x), .double(let y)), (.double(let y), .bool(let x)):
            return (y == 1 && x) || (y == 0 && !x)
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)):
            return Double(x) == y
        default:
            return a == b
        }
    }

    /// The API's booleans are `0`/`1` and sometimes `true`/`false`.
    package static func truthy(_ value: JSONValue) -> Bool {
        switch value {
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return s == "true" || s == "1"
        default: return false
        }
    }

    static func number(_ value: JSONValue) -> Double? { value.doubleValue }

    /// A chat `timestamp` as an instant: an ISO 8601 string or a Unix number.
    static func instant(_ value: JSONValue) -> Date? {
        switch value {
        case .string(let text): return Timestamp.parseISO8601(text)
        case .int, .double:
            guard let number = value.doubleValue else { return nil }
            return Date(timeIntervalSince1970: number > 1e11 ? number / 1000 : number)
        default: return nil
        }
    }
}
