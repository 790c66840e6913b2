import ChatBridgeCore
import Foundation

/// The last complete snapshot of a source as a poll needs it (fingerprint and missing
/// counter per chat), and what the poll in progress has seen of it. Pure: no I/O.
///
/// ```swift
/// var index = try await store.loadSnapshotIndex(source: "main")
/// switch index.observe(key: item.key, fingerprint: item.fingerprint) { case .unchanged: break; default: stage(item) }
/// let absent = index.absent()                 // listed last time, not this time
/// ```
///
/// It is an open-addressing hash table over parallel arrays, keyed by ``ChatKey`` (whose
/// bits are already uniformly random, so no further hashing), with the ids' UTF-8 bytes
/// in one buffer: loading 100,000 chats makes no object per chat, and a lookup touches a
/// few cache lines. Ids become `String`s only for the few chats a poll reports.
package struct SnapshotIndex: Sendable {
    /// What one listed chat is, compared with the snapshot.
    package enum Observation: Sendable, Hashable {
        /// Known, same fingerprint, first listing in this poll.
        case unchanged
        /// Known, with another fingerprint.
        case changed
        /// Not in the snapshot.
        case new
        /// Listed before in this poll (it moved between pages); its later copy wins.
        case repeated
    }

    private enum SlotState: UInt8 { case empty, occupied, removed }

    private var states: [SlotState]
    private var keyHighs: [UInt64]
    private var keyLows: [UInt64]
    private var fingerprints: [UInt64]
    private var missingCounts: [Int32]
    private var seenFlags: [Bool]
    /// Where each slot's id lives in ``idBytes``.
    private var idStarts: [UInt32]
    private var idLengths: [UInt32]
    /// The ids' UTF-8 bytes, one after another.
    private var idBytes: [UInt8] = []
    /// Occupied slots.
    package private(set) var count = 0
    /// Slots that held a chat that was removed (probing passes over them).
    private var removedSlots = 0
    /// Chats this poll listed that are not in the snapshot.
    private var newlySeen: Set<ChatKey> = []
    private var seenCount = 0

    /// An empty index with room for `capacity` chats before it grows.
    package init(minimumCapacity capacity: Int = 0) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        states = Array(repeating: .empty, count: size)
        keyHighs = Array(repeating: 0, count: size)
        keyLows = Array(repeating: 0, count: size)
        fingerprints = Array(repeating: 0, count: size)
        missingCounts = Array(repeating: 0, count: size)
        seenFlags = Array(repeating: false, count: size)
        idStarts = Array(repeating: 0, count: size)
        idLengths = Array(repeating: 0, count: size)
        idBytes.reserveCapacity(capacity * 24)
    }

    /// An index of `entries`.
    package init(_ entries: [String: SnapshotEntry]) {
        self.init(minimumCapacity: entries.count)
        for (id, entry) in entries { set(id, entry) }
    }

    /// Every entry by chat id.
    package var entries: [String: SnapshotEntry] {
        var result: [String: SnapshotEntry] = [:]
        for slot in states.indices where states[slot] == .occupied { result[id(at: slot)] = entry(at: slot) }
        return result
    }

    /// Distinct chats this poll has listed so far.
    package var observedCount: Int { seenCount + newlySeen.count }

    /// The snapshot's entry for `id`.
    package subscript(id: String) -> SnapshotEntry? {
        find(ChatKey(id: id)).map(entry(at:))
    }

    /// Records that this poll listed `id` with `fingerprint`, and says what that means.
    package mutating func observe(id: String, fingerprint: UInt64) -> Observation {
        observe(key: ChatKey(id: id), fingerprint: fingerprint)
    }

    /// Records that this poll listed the chat whose id has `key`, with `fingerprint`: what
    /// a poll calls with the key the page scanner computed, without a `String` per chat.
    package mutating func observe(key: ChatKey, fingerprint: UInt64) -> Observation {
        guard let slot = find(key) else {
            return newlySeen.insert(key).inserted ? .new : .repeated
        }
        if seenFlags[slot] { return .repeated }
        seenFlags[slot] = true
        seenCount += 1
        return fingerprints[slot] == fingerprint ? .unchanged : .changed
    }

    /// Chats of the snapshot this poll has not listed, with their missing counters.
    package func absent() -> [(id: String, missing: Int)] {
        var result: [(id: String, missing: Int)] = []
        for slot in states.indices where states[slot] == .occupied && !seenFlags[slot] {
            result.append((id(at: slot), Int(missingCounts[slot])))
        }
        return result
    }

    /// Chats this poll listed again after missing them before.
    package func reappeared() -> [String] {
        var result: [String] = []
        for slot in states.indices where states[slot] == .occupied && seenFlags[slot] && missingCounts[slot] > 0 {
            result.append(id(at: slot))
        }
        return result
    }

    /// Forgets what the last poll saw, for the next one.
    package mutating func resetObservations() {
        for slot in seenFlags.indices { seenFlags[slot] = false }
        seenCount = 0
        newlySeen.removeAll(keepingCapacity: true)
    }

    /// Sets (or, with `nil`, removes) the entry of `id`.
    package mutating func set(_ id: String, _ entry: SnapshotEntry?) {
        var id = id
        id.withUTF8 { set(utf8: UnsafeRawBufferPointer($0), entry) }
    }

    /// Sets (or, with `nil`, removes) the entry of the id whose UTF-8 bytes are `utf8`:
    /// what a store calls while it reads a snapshot, without making a `String` per chat.
    package mutating func set(utf8: UnsafeRawBufferPointer, _ entry: SnapshotEntry?) {
        let key = ChatKey(utf8: utf8)
        if let slot = find(key) {
            guard let entry else {
                if seenFlags[slot] { seenCount -= 1 }
                states[slot] = .removed
                count -= 1
                removedSlots += 1
                return
            }
            fingerprints[slot] = entry.fingerprint
            missingCounts[slot] = Int32(clamping: entry.missing)
            seenFlags[slot] = false
            return
        }
        guard let entry else { return }
        if (count + removedSlots + 1) * 2 > states.count { rebuild(minimumCapacity: count + 1) }
        var slot = Int(truncatingIfNeeded: key.low) & (states.count - 1)
        while states[slot] == .occupied { slot = (slot + 1) & (states.count - 1) }
        if states[slot] == .removed { removedSlots -= 1 }
        states[slot] = .occupied
        keyHighs[slot] = key.high
        keyLows[slot] = key.low
        fingerprints[slot] = entry.fingerprint
        missingCounts[slot] = Int32(clamping: entry.missing)
        seenFlags[slot] = false
        idStarts[slot] = UInt32(idBytes.count)
        idLengths[slot] = UInt32(utf8.count)
        idBytes.append(contentsOf: utf8)
        count += 1
    }

    /// Adds one to the missing counter of `id`, or sets it to 0.
    package mutating func updateMissing(_ id: String, reset: Bool) {
        guard let slot = find(ChatKey(id: id)) else { return }
        missingCounts[slot] = reset ? 0 : missingCounts[slot] + 1
    }

    // MARK: The table

    private func find(_ key: ChatKey) -> Int? {
        let mask = states.count - 1
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while true {
            switch states[slot] {
            case .empty:
                return nil
            case .occupied where keyLows[slot] == key.low && keyHighs[slot] == key.high:
                return slot
            default:
                slot = (slot + 1) & mask
            }
        }
    }

    private func entry(at slot: Int) -> SnapshotEntry {
        SnapshotEntry(fingerprint: fingerprints[slot], missing: Int(missingCounts[slot]))
    }

    private func id(at slot: Int) -> String {
        let start = Int(idStarts[slot])
        return String(decoding: idBytes[start..<start + Int(idLengths[slot])], as: UTF8.self)
    }

    /// Moves every chat into a table with room for `minimumCapacity`, dropping the
    /// removed slots and their ids' bytes.
    private mutating func rebuild(minimumCapacity: Int) {
        var bigger = SnapshotIndex(minimumCapacity: max(minimumCapacity, count) * 2)
        for slot in states.indices where states[slot] == .occupied {
            let start = Int(idStarts[slot])
            idBytes[start..<start + Int(idLengths[slot])].withUnsafeBytes { bytes in
                bigger.set(utf8: bytes, entry(at: slot))
            }
            if seenFlags[slot], let moved = bigger.find(ChatKey(high: keyHighs[slot], low: keyLows[slot])) {
                bigger.seenFlags[moved] = true
                bigger.seenCount += 1
            }
        }
        bigger.newlySeen = newlySeen
        self = bigger
    }
}

