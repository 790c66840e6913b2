/// Whether a stored chat has a given fingerprint: the part of a ``SnapshotIndex`` that a
/// page scanner asks while it reads a page (``SnapshotIndex/fingerprintLookup``).
///
/// A fingerprint is the keyed XXH64 of a chat's bytes as listed; equal fingerprints mean
/// equal bytes, so a chat found here is byte for byte one the snapshot holds.
package struct FingerprintLookup: Sendable {
    /// Slots of record number + 1 (0 when empty), by the fingerprint's low bits.
    private let table: [UInt32]
    /// Each record's fingerprint.
    private let fingerprints: [UInt64]

    init(table: [UInt32], fingerprints: [UInt64]) {
        self.table = table
        self.fingerprints = fingerprints
    }

    /// Whether a record has each of `fingerprints` (a page's worth): the first slots of
    /// all of them are read before any record, so that their cache misses overlap.
    package func contains(_ fingerprints: [UInt64]) -> [Bool] {
        let mask = table.count - 1
        let words = table.withUnsafeBufferPointer { table in
            fingerprints.map { table[Int(truncatingIfNeeded: $0) & mask] }
        }
        return zip(fingerprints, words).map { fingerprint, word in
            word != 0 && self.fingerprints[Int(word) - 1] == fingerprint ? true : contains(fingerprint)
        }
    }

    /// Whether a record has `fingerprint`.
    package func contains(_ fingerprint: UInt64) -> Bool {
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: fingerprint) & mask
        while true {
            let word = table[slot]
            if word == 0 { return false }
            if fingerprints[Int(word) - 1] == fingerprint { return true }
            slot = (slot + 1) & mask
        }
    }
}
