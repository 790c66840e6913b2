/// A chat id reduced to 128 bits: what the in-memory index of a snapshot is keyed by.
///
/// An unchanged poll of 100,000 chats looks every id up once; hashing and comparing two
/// integers instead of a heap-allocated string (a cache miss per comparison) is most of
/// what makes such a poll cheap. Two XXH64 fingerprints with different seeds make a
/// collision between two ids of one workspace about as likely as a random 128-bit match.
package struct ChatKey: Hashable, Sendable {
    package let high: UInt64
    package let low: UInt64

    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    package init(id: String) {
        var id = id
        self = id.withUTF8 { ChatKey(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// The key of the id whose UTF-8 bytes are `utf8`, without making a `String` of them.
    package init(utf8: UnsafeRawBufferPointer) {
        high = ChatFingerprint.fingerprint(of: utf8, seed: 0x9E37_79B9_7F4A_7C15)
        low = ChatFingerprint.fingerprint(of: utf8, seed: 0xC2B2_AE3D_27D4_EB4F)
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(low)
    }
}
