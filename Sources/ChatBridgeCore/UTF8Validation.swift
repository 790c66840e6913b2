/// Whether bytes are well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
/// nothing above U+10FFFF), checked without building a `String`.
///
/// The standard library's `String(validating:as:)` answers the same question, but it is
/// generic over the encoding and, called from here, looks up type metadata at run time on
/// every call: a third of the time of parsing a chat's JSON went there.
///
/// ```swift
/// UTF8Validation.isValid(UnsafeRawBufferPointer(...))   // true for "héllo", false for [0xC0, 0x80]
/// ```
package enum UTF8Validation {
    /// Whether `bytes` are well-formed UTF-8. Runs of ASCII are checked eight bytes at a time.
    package static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let end = bytes.count
        var index = 0
        while index < end {
            // Eight ASCII bytes at a time.
            while index + 8 <= end,
                  bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                index += 8
            }
            guard index < end else { return true }
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            guard let length = sequenceLength(bytes, at: index) else { return false }
            index += length
        }
        return true
    }

    /// The length of the well-formed sequence whose lead byte (at least 0x80) is at
    /// `index`, or `nil` when it is not one (the table of RFC 3629, section 4). The page
    /// scanner checks its strings' multi-byte characters with it too.
    @inlinable
    package static func sequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int? {
        let continuationCount: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch bytes[index] {
        case 0xC2...0xDF: continuationCount = 1
        case 0xE0: continuationCount = 2; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: continuationCount = 2
        case 0xED: continuationCount = 2; secondRange = 0x80...0x9F
        case 0xF0: continuationCount = 3; secondRange = 0x90...0xBF
        case 0xF1...0xF3: continuationCount = 3
        case 0xF4: continuationCount = 3; secondRange = 0x80...0x8F
        default: return nil
        }
        guard index + continuationCount < bytes.count, secondRange.contains(bytes[index + 1]) else { return nil }
        var offset = 2
        while offset <= continuationCount {
            guard (0x80...0xBF).contains(bytes[index + offset]) else { return nil }
            offset += 1
        }
        return continuationCount + 1
    }
}
