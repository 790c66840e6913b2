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
/// It is an open-addressing hash table of 8-byte slots (at most half full) over dense
/// records in parallel arrays, keyed by ``ChatKey`` (whose bits are already uniformly
/// random, so no further hashing), with the ids' UTF-8 bytes in one buffer: loading
/// 100,000 chats makes no object per chat and takes about 8 MB (2 MB of table, 37 bytes
/// of record and the id's bytes per chat), and a lookup touches a few cache lines. Ids
/// become `String`s only for the few chats a poll reports.
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

    /// The hash table: per slot 0 when empty, otherwise the record's number + 1 in the low
    /// 32 bits and 32 further bits of its key (a tag) in the high ones, so that a probe
    /// rarely looks at a record that is not the one sought. At most half full.
    private var table: [UInt64]
    // The records, one per chat in the order they were set, in parallel arrays.
    private var keyLows: [UInt64] = []
    private var keyHighs: [UInt64] = []
    private var fingerprints: [UInt64] = []
    private var missingCounts: [Int32] = []
    private var flags: [RecordFlags] = []
    /// Where each record's id lives in ``idBytes``.
    private var idStarts: [UInt32] = []
    private var idLengths: [UInt32] = []
    /// The ids' UTF-8 bytes, one after another.
    private var idBytes: [UInt8] = []
    /// Records that hold a chat (not removed).
    package private(set) var count = 0
    /// Records of removed chats (the table keeps pointing at them until it is rebuilt).
    private var removedRecords = 0
    /// Chats this poll listed that are not in the snapshot.
    private var newlySeen: Set<ChatKey> = []
    private var seenCount = 0

    private struct RecordFlags: OptionSet {
        let rawValue: UInt8
        static let seen = RecordFlags(rawValue: 1)
        static let removed = RecordFlags(rawValue: 2)
    }

    /// An empty index with room for `capacity` chats before it grows.
    package init(minimumCapacity capacity: Int = 0) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        table = Array(repeating: 0, count: size)
        keyLows.reserveCapacity(capacity)
        keyHighs.reserveCapacity(capacity)
        fingerprints.reserveCapacity(capacity)
        missingCounts.reserveCapacity(capacity)
        flags.reserveCapacity(capacity)
        idStarts.reserveCapacity(capacity)
        idLengths.reserveCapacity(capacity)
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
        for record in flags.indices where !flags[record].contains(.removed) { result[id(of: record)] = entry(of: record) }
        return result
    }

    /// Distinct chats this poll has listed so far.
    package var observedCount: Int { seenCount + newlySeen.count }

    /// The snapshot's entry for `id`.
    package subscript(id: String) -> SnapshotEntry? {
        find(ChatKey(id: id)).map(entry(of:))
    }

    /// Records that this poll listed `id` with `fingerprint`, and says what that means.
    package mutating func observe(id: String, fingerprint: UInt64) -> Observation {
        observe(key: ChatKey(id: id), fingerprint: fingerprint)
    }

    /// Records that this poll listed the chat whose id has `key`, with `fingerprint`: what
    /// a poll calls with the key the page scanner computed, without a `String` per chat.
    package mutating func observe(key: ChatKey, fingerprint: UInt64) -> Observation {
        guard let record = find(key) else {
            return newlySeen.insert(key).inserted ? .new : .repeated
        }
        if flags[record].contains(.seen) { return .repeated }
        flags[record].insert(.seen)
        seenCount += 1
        return fingerprints[record] == fingerprint ? .unchanged : .changed
    }

    /// Chats of the snapshot this poll has not listed, with their missing counters.
    package func absent() -> [(id: String, missing: Int)] {
        var result: [(id: String, missing: Int)] = []
        for record in flags.indices where flags[record].isDisjoint(with: [.seen, .removed]) {
            result.append((id(of: record), Int(missingCounts[record])))
        }
        return result
    }

    /// Chats this poll listed again after missing them before.
    package func reappeared() -> [String] {
        var result: [String] = []
        for record in flags.indices where flags[record] == .seen && missingCounts[record] > 0 {
            result.append(id(of: record))
        }
        return result
    }

    /// Forgets what the last poll saw, for the next one.
    package mutating func resetObservations() {
        for record in flags.indices { flags[record].remove(.seen) }
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
        if let record = find(key) {
            guard let entry else {
                if flags[record].contains(.seen) { seenCount -= 1 }
                flags[record] = .removed
                count -= 1
                removedRecords += 1
                return
            }
            fingerprints[record] = entry.fingerprint
            missingCounts[record] = Int32(clamping: entry.missing)
            flags[record].remove(.seen)
            return
        }
        guard let entry else { return }
        if (count + removedRecords + 1) * 2 > table.count { rebuild(minimumCapacity: count + 1) }
        let record = keyLows.count
        keyLows.append(key.low)
        keyHighs.append(key.high)
        fingerprints.append(entry.fingerprint)
        missingCounts.append(Int32(clamping: entry.missing))
        flags.append([])
        idStarts.append(UInt32(idBytes.count))
        idLengths.append(UInt32(utf8.count))
        idBytes.append(contentsOf: utf8)
        count += 1
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while table[slot] != 0 { slot = (slot + 1) & mask }
        table[slot] = Self.tag(of: key) << 32 | UInt64(record + 1)
    }

    /// Adds one to the missing counter of `id`, or sets it to 0.
    package mutating func updateMissing(_ id: String, reset: Bool) {
        guard let record = find(ChatKey(id: id)) else { return }
        missingCounts[record] = reset ? 0 : missingCounts[record] &+ 1
    }

    // MARK: The table

    /// Bits of the key that the slot number does not use.
    private static func tag(of key: ChatKey) -> UInt64 {
        UInt64(UInt32(truncatingIfNeeded: key.high))
    }

    private func find(_ key: ChatKey) -> Int? {
        let mask = table.count - 1
        let tag = Self.tag(of: key)
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while true {
            let word = table[slot]
            if word == 0 { return nil }
            if word >> 32 == tag {
                let record = Int(truncatingIfNeeded: word & 0xFFFF_FFFF) - 1
                if keyLows[record] == key.low, keyHighs[record] == key.high, !flags[record].contains(.removed) {
                    return record
                }
            }
            slot = (slot + 1) & mask
        }
    }

    private func entry(of record: Int) -> SnapshotEntry {
        SnapshotEntry(fingerprint: fingerprints[record], missing: Int(missingCounts[record]))
    }

    private func id(of record: Int) -> String {
        let start = Int(idStarts[record])
        return String(decoding: idBytes[start..<start + Int(idLengths[record])], as: UTF8.self)
    }

    /// Moves every chat into a table with room for `minimumCapacity`, dropping the
    /// removed records and their ids' bytes.
    private mutating func rebuild(minimumCapacity: Int) {
        var bigger = SnapshotIndex(minimumCapacity: max(minimumCapacity, count) * 2)
        for record in flags.indices where !flags[record].contains(.removed) {
            let start = Int(idStarts[record])
            idBytes[start..<start + Int(idLengths[record])].withUnsafeBytes { bytes in
                bigger.set(utf8: bytes, entry(of: record))
            }
            if flags[record].contains(.seen) {
                bigger.flags[bigger.flags.count - 1].insert(.seen)
                bigger.seenCount += 1
            }
        }
        bigger.newlySeen = newlySeen
        self = bigger
    }
}
