import Foundation
/// A keyed 64-bit fingerprint of a chat's raw JSON bytes: XXH64 with a seed.
///
/// chatbridge compares the fingerprint of each item of a poll with the fingerprint stored for the
/// same chat, and decodes only the items whose fingerprints differ: an unchanged chat costs
/// one hash and no parse. The seed is random per database, so that whoever controls a
/// chat's name cannot aim for a collision with another state of the chat (which would
/// hide a change):
///
/// ```swift
/// let seed = UInt64.random(in: .min ... .max)        // kept by the store
/// let fingerprint = ChatFingerprint.fingerprint(of: itemBytes, seed: seed)
/// if fingerprint != stored.fingerprint { /* decode and diff this chat */ }
/// ```
///
/// XXH64 is not a cryptographic MAC; the seed makes targeted collisions impractical for
/// someone who never sees a fingerprint, which is what this use needs. Fingerprints never leave
/// the store.
package enum ChatFingerprint {
    /// The XXH64 fingerprint of `bytes` with `seed` (identical to the reference
    /// implementation's `XXH64(bytes, length, seed)`).
    package static func fingerprint(of bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        XXH64.hash(bytes, seed: seed)
    }

    /// The XXH64 fingerprint of `bytes` with `seed`.
    package static func fingerprint(of bytes: some Collection<UInt8>, seed: UInt64) -> UInt64 {
        if let fingerprint = bytes.withContiguousStorageIfAvailable({ buffer in
            XXH64.hash(UnsafeRawBufferPointer(buffer), seed: seed)
        }) {
            return fingerprint
        }
        return Array(bytes).withUnsafeBytes { XXH64.hash($0, seed: seed) }
    }
}

/// XXH64 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), one shot.
package enum XXH64 {
    static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always)
    static func rotateLeft(_ value: UInt64, _ count: UInt64) -> UInt64 {
        (value << count) | (value >> (64 - count))
    }

    @inline(__always)
    static func round(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        rotateLeft(accumulator &+ lane &* prime2, 31) &* prime1
    }

    @inline(__always)
    static func mergeRound(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        (accumulator ^ round(0, lane)) &* prime1 &+ prime4
    }

    @inline(__always)
    static func load64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    static func load32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    package static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let length = bytes.count
        var offset = 0
        var hash: UInt64

        if length >= 32 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            let stripesEnd = length - 32
            while offset <= stripesEnd {
                v1 = round(v1, load64(bytes, offset))
                v2 = round(v2, load64(bytes, offset + 8))
                v3 = round(v3, load64(bytes, offset + 16))
                v4 = round(v4, load64(bytes, offset + 24))
                offset += 32
            }
            hash = rotateLeft(v1, 1) &+ rotateLeft(v2, 7) &+ rotateLeft(v3, 12) &+ rotateLeft(v4, 18)
            hash = mergeRound(hash, v1)
            hash = mergeRound(hash, v2)
            hash = mergeRound(hash, v3)
            hash = mergeRound(hash, v4)
        } else {
            hash = seed &+ prime5
        }

        hash &+= UInt64(length)

        while length - offset >= 8 {
            hash ^= round(0, load64(bytes, offset))
            hash = rotateLeft(hash, 27) &* prime1 &+ prime4
            offset += 8
        }
        if length - offset >= 4 {
            hash ^= load32(bytes, offset) &* prime1
            hash = rotateLeft(hash, 23) &* prime2 &+ prime3
            offset += 4
        }
        while offset < length {
            hash ^= UInt64(bytes[offset]) &* prime5
            hash = rotateLeft(hash, 11) &* prime1
            offset += 1
        }

        hash ^= hash >> 33
        hash &*= prime2
        hash ^= hash >> 29
        hash &*= prime3
        hash ^= hash >> 32
        return hash
    }
}
