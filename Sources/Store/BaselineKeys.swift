import Foundation

/// The keys of a baseline in progress: for every chat whose body a store has appended so
/// far, its id, its fingerprint and where its body went, in listing order.
///
/// A baseline appends its chats' bodies as the pages arrive and writes their keys once, in
/// order, when every page is in (``SnapshotStore/storeBaselineKeys(source:keys:)``): keys
/// written batch by batch would rewrite the pages of the key table once per batch, because
/// the ids arrive in random order. Until then the keys are held here, in four flat arrays
/// (about 42 bytes per chat for Unipile's 22-byte ids), not a `String` or a dictionary
/// entry per chat.
///
/// ```swift
/// var keys = BaselineKeys()
/// keys.append(id: "aTx7Pj_fZWMUnfUis2DEVw", fingerprint: 0x9e37, bodyID: 1)
/// let plan = keys.plan()   // what to insert, in key order, and which bodies were superseded
/// ```
package struct BaselineKeys: Sendable {
    /// Every id's UTF-8 bytes, one after the other.
    private var idBytes: [UInt8] = []
    /// Where each id ends in ``idBytes`` (it starts where the one before ends).
    private var idEnds: [UInt32] = []
    /// Each chat's fingerprint.
    package private(set) var fingerprints: [UInt64] = []
    /// Where each chat's body went (the store's id of the body row).
    package private(set) var bodyIDs: [Int64] = []

    package init() {}

    /// How many chats were appended, counting a chat listed twice twice.
    package var count: Int { idEnds.count }

    /// Records that the body of chat `id` (fingerprint `fingerprint`) was stored as `bodyID`.
    package mutating func append(id: String, fingerprint: UInt64, bodyID: Int64) {
        idBytes.append(contentsOf: id.utf8)
        precondition(idBytes.count <= UInt32.max, "a baseline's ids take more than 4 GiB")
        idEnds.append(UInt32(idBytes.count))
        fingerprints.append(fingerprint)
        bodyIDs.append(bodyID)
    }

    /// Calls `body` with the UTF-8 bytes of the id at `position` (valid only inside `body`).
    package func withID<Result>(at position: Int, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try idBytes.withUnsafeBytes { bytes in try body(UnsafeRawBufferPointer(rebasing: bytes[idRange(at: position)])) }
    }

    /// Where the id at `position` lies in ``idBytes``.
    private func idRange(at position: Int) -> Range<Int> {
        (position == 0 ? 0 : Int(idEnds[position - 1]))..<Int(idEnds[position])
    }

    /// What a store writes when every page of the baseline is in.
    package struct Plan: Sendable, Equatable {
        /// The positions of the keys to write, in the order of their ids' bytes (SQLite's
        /// `BINARY` order of text, so the inserts append to the key table); each chat once,
        /// with the copy listed last.
        package var keys: [UInt32]
        /// The bodies of copies that a later copy of the same chat replaced, to delete.
        package var supersededBodies: [Int64]
    }

    /// The keys to write, sorted by id, each chat with its copy listed last (a chat listed
    /// twice keeps its later copy), and the bodies that nothing will point at.
    ///
    /// It sorts positions (4 bytes a chat) and reads the ids where they are.
    package func plan() -> Plan {
        precondition(count <= UInt32.max, "a baseline of more than 4 billion chats")
        return idBytes.withUnsafeBytes { bytes in
            func id(_ position: UInt32) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: bytes[idRange(at: Int(position))])
            }
            var order = [UInt32](0..<UInt32(count))
            order.sort { a, b in
                switch Self.compare(id(a), id(b)) {
                case 0: return a < b
                case let sign: return sign < 0
                }
            }
            // Equal ids are adjacent, in listing order: all but the last are superseded.
            // The kept positions move to the front of `order` (never past where they are read).
            var supersededBodies: [Int64] = []
            var kept = 0
            for rank in order.indices {
                let position = order[rank]
                if rank + 1 < order.count, Self.compare(id(position), id(order[rank + 1])) == 0 {
                    supersededBodies.append(bodyIDs[Int(position)])
                } else {
                    order[kept] = position
                    kept += 1
                }
            }
            order.removeLast(order.count - kept)
            return Plan(keys: order, supersededBodies: supersededBodies)
        }
    }

    /// Calls `body` with the id bytes (valid only inside `body`), fingerprint and body id
    /// of each key of `plan`, in its order.
    package func forEachKey(
        of plan: Plan, _ body: (_ id: UnsafeRawBufferPointer, _ fingerprint: UInt64, _ bodyID: Int64) throws -> Void
    ) rethrows {
        try idBytes.withUnsafeBytes { bytes in
            for position in plan.keys.lazy.map(Int.init) {
                try body(
                    UnsafeRawBufferPointer(rebasing: bytes[idRange(at: position)]), fingerprints[position], bodyIDs[position])
            }
        }
    }

    /// SQLite's `BINARY` collation: the first eight bytes as one big-endian integer (most
    /// ids differ there), then memcmp over the shorter length, then the shorter first.
    @inline(__always)
    private static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        if a.count >= 8, b.count >= 8 {
            let left = UInt64(bigEndian: a.loadUnaligned(as: UInt64.self))
            let right = UInt64(bigEndian: b.loadUnaligned(as: UInt64.self))
            if left != right { return left < right ? -1 : 1 }
        }
        let shared = min(a.count, b.count)
        if shared > 0, let left = a.baseAddress, let right = b.baseAddress {
            let result = memcmp(left, right, shared)
            if result != 0 { return Int(result) }
        }
        return a.count - b.count
    }
}
