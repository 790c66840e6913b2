import Foundation
import ChatBridgeCore
/// A chat id reduced to 128 bits: what the in-memory index of a snapshot is keyed by.
///
/// An unchanged poll of 100,000 chats looks every id up once; hashing and comparing two
/// integers instead of a heap-allocated string (a cache miss per comparison) is most of
/// what makes such a poll cheap. Two XXH64 fingerprints with different seeds make a collision
/// between two ids of one workspace about as likely as a random 128-bit match.
package struct ChatKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    package init(id: String) {
        var id = id
        (high, low) = id.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            return (ChatFingerprint.fingerprint(of: raw, seed: 0x9E37_79B9_7F4A_7C15), ChatFingerprint.fingerprint(of: raw, seed: 0xC2B2_AE3D_27D4_EB4F))
        }
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(low)
    }
}

/// The last complete snapshot of a source as a poll needs it (fingerprint and missing counter
/// per chat), and what the poll in progress has seen of it. Pure: no I/O.
///
/// ```swift
/// var index = SnapshotIndex(entries)          // from SQLiteStore.snapshotIndex
/// switch index.observe(id: item.id, fingerprint: item.fingerprint) { case .unchanged: break; default: stage(item) }
/// let absent = index.absent()                 // listed last time, not this time
/// ```
package struct SnapshotIndex: Sendable {
    struct Slot: Sendable {
        var id: String
        var entry: SnapshotEntry
        var seen: Bool
    }

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

    private var slots: [ChatKey: Slot]
    private var newlySeen: Set<ChatKey> = []

    package init(_ entries: [String: SnapshotEntry] = [:]) {
        slots = Dictionary(minimumCapacity: entries.count)
        for (id, entry) in entries { slots[ChatKey(id: id)] = Slot(id: id, entry: entry, seen: false) }
    }

    /// An empty index with room for `capacity` chats, filled with ``set(_:_:)``.
    package init(minimumCapacity capacity: Int) {
        slots = Dictionary(minimumCapacity: capacity)
    }

    /// Chats in the snapshot.
    package var count: Int { slots.count }

    /// Every entry by chat id.
    package var entries: [String: SnapshotEntry] {
        Dictionary(uniqueKeysWithValues: slots.values.map { ($0.id, $0.entry) })
    }

    /// Distinct chats this poll has listed so far.
    package var observedCount: Int { slots.values.reduce(0) { $0 + ($1.seen ? 1 : 0) } + newlySeen.count }

    /// The snapshot's entry for `id`.
    package subscript(id: String) -> SnapshotEntry? { slots[ChatKey(id: id)]?.entry }

    /// Records that this poll listed `id` with `fingerprint`, and says what that means.
    package mutating func observe(id: String, fingerprint: UInt64) -> Observation {
        let key = ChatKey(id: id)
        if let position = slots.index(forKey: key) {
            if slots.values[position].seen { return .repeated }
            slots.values[position].seen = true
            return slots.values[position].entry.fingerprint == fingerprint ? .unchanged : .changed
        }
        return newlySeen.insert(key).inserted ? .new : .repeated
    }

    /// Chats of the snapshot this poll has not listed, with their missing counters.
    package func absent() -> [(id: String, missing: Int)] {
        slots.values.filter { !$0.seen }.map { ($0.id, $0.entry.missing) }
    }

    /// Chats this poll listed again after missing them before.
    package func reappeared() -> [String] {
        slots.values.filter { $0.seen && $0.entry.missing > 0 }.map(\.id)
    }

    /// Forgets what the last poll saw, for the next one.
    package mutating func resetObservations() {
        for position in slots.indices { slots.values[position].seen = false }
        newlySeen.removeAll(keepingCapacity: true)
    }

    /// Sets (or, with `nil`, removes) the entry of `id`.
    package mutating func set(_ id: String, _ entry: SnapshotEntry?) {
        let key = ChatKey(id: id)
        if let entry {
            slots[key] = Slot(id: id, entry: entry, seen: false)
        } else {
            slots[key] = nil
        }
    }

    /// Adds one to the missing counter of `id`, or sets it to 0.
    package mutating func updateMissing(_ id: String, reset: Bool) {
        let key = ChatKey(id: id)
        guard let position = slots.index(forKey: key) else { return }
        slots.values[position].entry.missing = reset ? 0 : slots.values[position].entry.missing + 1
    }
}
