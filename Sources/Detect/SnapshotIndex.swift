import ChatBridgeCore
import Foundation

/// The last complete snapshot of a source as a poll needs it (fingerprint and missing
/// counter per chat), and what the poll in progress has seen of it. Pure: no I/O.
///
/// ```swift
/// var index = try await store.loadSnapshotIndex(source: "main")
/// let claimed = index.claim(page.recognised.map(\.fingerprint))  // byte for byte stored: unchanged
/// switch index.observe(key: item.key, fingerprint: item.fingerprint) { case .unchanged: break; default: stage(item) }
/// let absent = index.absent()                 // listed last time, not this time
/// ```
///
/// It is two open-addressing hash tables of 4-byte slots (at most half full) over dense
/// records in parallel arrays, one by fingerprint (for chats recognised by their bytes,
/// ``claim(_:)``) and one by ``ChatKey`` (whose bits, like a fingerprint's, are already
/// uniformly random, so no further hashing), with the ids' UTF-8 bytes in one buffer.
/// Loading 100,000 chats makes no object per chat and takes about 5 MB (1 MB of table,
/// 17 bytes of record and the id's bytes per chat); the keys and their table (2.6 MB
/// more) are made only when a chat is first looked up by id. A lookup touches a few
/// cache lines. Ids become `String`s only for the few chats a poll reports.
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

    /// The hash table by key: per slot 0 when empty, otherwise the record's number + 1. At
    /// most half full, so that a probe rarely looks at a record that is not the one
    /// sought. Empty, like ``keyLows`` and ``keyHighs``, until ``hasKeys``.
    private var table: [UInt32]
    /// Whether the records' keys and their table are made. A loaded index makes them the
    /// first time a chat is looked up by id (``buildKeys()``): a poll in which every chat
    /// is recognised by its bytes (``claim(_:)``) never needs them.
    private var hasKeys = true
    /// A second table of the same shape, by fingerprint: ``fingerprintLookup`` and
    /// ``claim(_:)``. A record whose fingerprint changed keeps its old slot here (a probe
    /// checks the record's fingerprint), counted in ``staleFingerprintSlots``.
    private var fingerprintTable: [UInt32]
    private var staleFingerprintSlots = 0
    // The records, one per chat in the order they were set, in parallel arrays.
    private var keyLows: [UInt64] = []
    private var keyHighs: [UInt64] = []
    private var fingerprints: [UInt64] = []
    private var missingCounts: [Int32] = []
    private var flags: [RecordFlags] = []
    /// Where each record's id ends in ``idBytes`` (it starts where the previous one ends).
    private var idEnds: [UInt32] = []
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
        fingerprintTable = Array(repeating: 0, count: size)
        keyLows.reserveCapacity(capacity)
        keyHighs.reserveCapacity(capacity)
        fingerprints.reserveCapacity(capacity)
        missingCounts.reserveCapacity(capacity)
        flags.reserveCapacity(capacity)
        idEnds.reserveCapacity(capacity)
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
        if hasKeys { return find(ChatKey(id: id)).map(entry(of:)) }
        // Keys not made yet: compare the ids themselves.
        let wanted = Array(id.utf8)
        return flags.indices.last { record in
            !flags[record].contains(.removed) && idBytes[idRange(of: record)].elementsEqual(wanted)
        }.map(entry(of:))
    }

    /// Records that this poll listed `id` with `fingerprint`, and says what that means.
    package mutating func observe(id: String, fingerprint: UInt64) -> Observation {
        observe(key: ChatKey(id: id), fingerprint: fingerprint)
    }

    /// Records that this poll listed the chat whose id has `key`, with `fingerprint`: what
    /// a poll calls with the key the page scanner computed, without a `String` per chat.
    package mutating func observe(key: ChatKey, fingerprint: UInt64) -> Observation {
        buildKeys()
        return observe(record: find(key), key: key, fingerprint: fingerprint)
    }

    /// Records that this poll listed the chats whose ids have `keys`, with `fingerprints`
    /// (one page's worth, in the order listed), and says what each means: the same
    /// answers, in the same order, as calling ``observe(key:fingerprint:)`` for each.
    ///
    /// Looking a chat up reads a table slot and then its record, two cache misses that
    /// depend on each other; one chat after another, a page of them waits for 500 misses
    /// in turn. Here the slots of all the keys are read first, then the records they point
    /// at, each pass a run of reads that do not depend on one another, so the processor
    /// overlaps their misses.
    package mutating func observe(keys: [ChatKey], fingerprints: [UInt64]) -> [Observation] {
        precondition(keys.count == fingerprints.count, "one fingerprint per key")
        guard !keys.isEmpty else { return [] }
        buildKeys()
        let mask = table.count - 1
        // Pass 1: each key's first slot.
        let words = table.withUnsafeBufferPointer { table in
            keys.map { table[Int(truncatingIfNeeded: $0.low) & mask] }
        }
        // Pass 2: the record that slot names, when it is the key's (else -1: look it up).
        var records = [Int](repeating: -1, count: keys.count)
        for (position, key) in keys.enumerated() {
            let word = words[position]
            guard word != 0 else { continue }
            let record = Int(word) - 1
            if keyLows[record] == key.low, keyHighs[record] == key.high, !flags[record].contains(.removed) {
                records[position] = record
            }
        }
        // Pass 3: the answers, in order (a chat listed twice on the page is repeated).
        var observations: [Observation] = []
        observations.reserveCapacity(keys.count)
        for (position, key) in keys.enumerated() {
            let found = records[position] >= 0 ? records[position] : find(key)
            observations.append(observe(record: found, key: key, fingerprint: fingerprints[position]))
        }
        return observations
    }

    private mutating func observe(record: Int?, key: ChatKey, fingerprint: UInt64) -> Observation {
        guard let record else {
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
        buildKeys()
        let key = ChatKey(utf8: utf8)
        if let record = find(key) {
            guard let entry else {
                if flags[record].contains(.seen) { seenCount -= 1 }
                flags[record] = .removed
                count -= 1
                removedRecords += 1
                return
            }
            if fingerprints[record] != entry.fingerprint {
                if (count + removedRecords + staleFingerprintSlots + 1) * 2 > fingerprintTable.count {
                    rebuild(minimumCapacity: count + 1)
                    set(utf8: utf8, entry)
                    return
                }
                fingerprints[record] = entry.fingerprint
                staleFingerprintSlots += 1
                Self.insert(record, hash: entry.fingerprint, into: &fingerprintTable)
            }
            missingCounts[record] = Int32(clamping: entry.missing)
            flags[record].remove(.seen)
            return
        }
        guard let entry else { return }
        if (count + removedRecords + staleFingerprintSlots + 1) * 2 > fingerprintTable.count { rebuild(minimumCapacity: count + 1) }
        let record = fingerprints.count
        keyLows.append(key.low)
        keyHighs.append(key.high)
        fingerprints.append(entry.fingerprint)
        missingCounts.append(Int32(clamping: entry.missing))
        flags.append([])
        idBytes.append(contentsOf: utf8)
        idEnds.append(UInt32(idBytes.count))
        count += 1
        Self.insert(record, hash: key.low, into: &table)
        Self.insert(record, hash: entry.fingerprint, into: &fingerprintTable)
    }

    /// Puts `record` in the first free slot from the one `hash` names.
    private static func insert(_ record: Int, hash: UInt64, into table: inout [UInt32]) {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != 0 { slot = (slot + 1) & mask }
        table[slot] = UInt32(record + 1)
    }

    /// Builds the index of a stored snapshot: each chat's id and entry are added, and the
    /// table is made once they are all in.
    ///
    /// A loader takes the records first and fills the table by fingerprint at the end, a
    /// run of slots at a time, each run's slots read before any is written so that their
    /// cache misses overlap. The keys of the ids, and the table by key, are made only when
    /// a chat is first looked up by id: a poll that recognises every chat by its bytes
    /// needs neither. A store adds each id once (its primary key); should one come twice,
    /// or two ids share a ``ChatKey``, the later one wins from that first lookup on.
    ///
    /// ```swift
    /// var loader = SnapshotIndex.Loader(expectedCount: lastPoll.items)
    /// while let row = try rows.next() { loader.add(utf8: row.idBytes, row.entry) }
    /// let index = loader.finish()
    /// ```
    package struct Loader {
        private var index = SnapshotIndex(minimumCapacity: 0)

        /// A loader with room for `expectedCount` chats (a hint: it grows past it).
        package init(expectedCount: Int) {
            index.hasKeys = false
            index.table = []
            index.fingerprints.reserveCapacity(expectedCount)
            index.missingCounts.reserveCapacity(expectedCount)
            index.idEnds.reserveCapacity(expectedCount)
            index.idBytes.reserveCapacity(expectedCount * 24)
        }

        /// Adds the chat whose id's UTF-8 bytes are `utf8`, without making a `String` of them.
        package mutating func add(utf8: UnsafeRawBufferPointer, _ entry: SnapshotEntry) {
            index.fingerprints.append(entry.fingerprint)
            index.missingCounts.append(Int32(clamping: entry.missing))
            index.idBytes.append(contentsOf: utf8)
            index.idEnds.append(UInt32(index.idBytes.count))
        }

        /// Adds the chat `id`.
        package mutating func add(id: String, _ entry: SnapshotEntry) {
            var id = id
            id.withUTF8 { add(utf8: UnsafeRawBufferPointer($0), entry) }
        }

        /// The index of every chat added.
        package consuming func finish() -> SnapshotIndex {
            index.flags = Array(repeating: [], count: index.fingerprints.count)
            index.count = index.fingerprints.count
            var size = 16
            while size < index.count * 2 { size <<= 1 }
            index.fingerprintTable = Array(repeating: 0, count: size)
            index.fillFingerprintTable()
            return index
        }
    }

    /// Makes every record's key from its id, and the table by key, unless they are made.
    /// A chat whose key an earlier record has too is taken for the same chat (the later
    /// one wins, as with ``set(utf8:_:)``).
    private mutating func buildKeys() {
        guard !hasKeys else { return }
        hasKeys = true
        keyLows = []
        keyHighs = []
        keyLows.reserveCapacity(fingerprints.count)
        keyHighs.reserveCapacity(fingerprints.count)
        for record in fingerprints.indices {
            let key = idBytes[idRange(of: record)].withUnsafeBytes { ChatKey(utf8: $0) }
            keyLows.append(key.low)
            keyHighs.append(key.high)
        }
        table = Array(repeating: 0, count: fingerprintTable.count)
        fillTable()
    }

    /// Points the (empty) table by key at every record; a record whose key an earlier one
    /// has too takes its slot, and the earlier one is removed.
    private mutating func fillTable() {
        let (lows, highs) = (keyLows, keyHighs)
        let replaced = Self.fill(&table, hashes: lows) { earlier, record in
            lows[earlier] == lows[record] && highs[earlier] == highs[record]
        }
        for record in replaced where !flags[record].contains(.removed) {
            flags[record] = .removed
            count -= 1
            removedRecords += 1
        }
    }

    /// Points the (empty) fingerprint table at every record that holds a chat.
    private mutating func fillFingerprintTable() {
        let removed = Set(flags.indices.filter { flags[$0].contains(.removed) })
        _ = Self.fill(&fingerprintTable, hashes: fingerprints, skipping: removed) { _, _ in false }
    }

    /// Points the empty `table` at records `0..<hashes.count`, each at the first free slot
    /// from the one its hash names, a run of 64 records at a time: the run's slots are read
    /// before any is written, so that their cache misses overlap. A record for which
    /// `isSame(earlier, record)` holds takes the earlier record's slot instead; the
    /// earlier ones are returned.
    private static func fill(
        _ table: inout [UInt32], hashes: [UInt64], skipping skipped: Set<Int> = [],
        isSame: (_ earlier: Int, _ record: Int) -> Bool
    ) -> [Int] {
        let mask = table.count - 1
        let run = 64
        var firstWords = [UInt32](repeating: 0, count: run)
        var replaced: [Int] = []
        var start = 0
        while start < hashes.count {
            let end = min(start + run, hashes.count)
            for record in start..<end {
                firstWords[record - start] = table[Int(truncatingIfNeeded: hashes[record]) & mask]
            }
            for record in start..<end where !skipped.contains(record) {
                var slot = Int(truncatingIfNeeded: hashes[record]) & mask
                // Empty before the run and not taken by an earlier record of it: the usual case.
                if firstWords[record - start] != 0 || table[slot] != 0 {
                    while table[slot] != 0, !isSame(Int(table[slot]) - 1, record) { slot = (slot + 1) & mask }
                    if table[slot] != 0 { replaced.append(Int(table[slot]) - 1) }
                }
                table[slot] = UInt32(record + 1)
            }
            start = end
        }
        return replaced
    }

    // MARK: Chats recognised by their bytes

    /// Whether a chat of the snapshot has `fingerprint`, to ask while a page is scanned:
    /// a chat whose bytes are those of a stored one need not be validated or parsed again
    /// (``claim(_:)`` then counts it as listed). It is a value of its own, so that the
    /// scanner can hold it while the poll changes the index.
    ///
    /// It may answer `true` for a chat that ``claim(_:)`` then refuses (one removed, or
    /// listed before in this poll): such a chat is scanned in full after all.
    package var fingerprintLookup: FingerprintLookup {
        FingerprintLookup(table: fingerprintTable, fingerprints: fingerprints)
    }

    /// Counts the chats of the snapshot with `fingerprints` as listed unchanged, and says
    /// for each whether it was: `false` for one that is not in the snapshot (any more) or
    /// was listed before in this poll; the poll then scans it and calls
    /// ``observe(keys:fingerprints:)`` as for any other chat.
    package mutating func claim(_ fingerprints: [UInt64]) -> [Bool] {
        let mask = fingerprintTable.count - 1
        // The first slots first, so that their cache misses overlap.
        let words = fingerprintTable.withUnsafeBufferPointer { table in
            fingerprints.map { table[Int(truncatingIfNeeded: $0) & mask] }
        }
        var claimed: [Bool] = []
        claimed.reserveCapacity(fingerprints.count)
        for (position, fingerprint) in fingerprints.enumerated() {
            var slot = Int(truncatingIfNeeded: fingerprint) & mask
            var word = words[position]
            var found: Int?
            while word != 0 {
                let record = Int(word) - 1
                if self.fingerprints[record] == fingerprint, !flags[record].contains(.removed) {
                    found = record
                    break
                }
                slot = (slot + 1) & mask
                word = fingerprintTable[slot]
            }
            guard let record = found, !flags[record].contains(.seen) else {
                claimed.append(false)
                continue
            }
            flags[record].insert(.seen)
            seenCount += 1
            claimed.append(true)
        }
        return claimed
    }

    /// Adds one to the missing counter of `id`, or sets it to 0.
    package mutating func updateMissing(_ id: String, reset: Bool) {
        buildKeys()
        guard let record = find(ChatKey(id: id)) else { return }
        missingCounts[record] = reset ? 0 : missingCounts[record] &+ 1
    }

    // MARK: The table

    private func find(_ key: ChatKey) -> Int? {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: key.low) & mask
        while true {
            let word = table[slot]
            if word == 0 { return nil }
            let record = Int(word) - 1
            if keyLows[record] == key.low, keyHighs[record] == key.high, !flags[record].contains(.removed) {
                return record
            }
            slot = (slot + 1) & mask
        }
    }

    private func entry(of record: Int) -> SnapshotEntry {
        SnapshotEntry(fingerprint: fingerprints[record], missing: Int(missingCounts[record]))
    }

    private func id(of record: Int) -> String {
        String(decoding: idBytes[idRange(of: record)], as: UTF8.self)
    }

    private func idRange(of record: Int) -> Range<Int> {
        (record == 0 ? 0 : Int(idEnds[record - 1]))..<Int(idEnds[record])
    }

    /// Moves every chat into a table with room for `minimumCapacity`, dropping the
    /// removed records and their ids' bytes.
    private mutating func rebuild(minimumCapacity: Int) {
        var bigger = SnapshotIndex(minimumCapacity: max(minimumCapacity, count) * 2)
        for record in flags.indices where !flags[record].contains(.removed) {
            idBytes[idRange(of: record)].withUnsafeBytes { bytes in
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
