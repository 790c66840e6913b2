import Foundation

/// Makes UUIDv7 event ids (RFC 9562): unique, and ordered by creation time, so that
/// sorting stored events by id sorts them by detection.
///
/// Within one millisecond the 12-bit `rand_a` field is used as a counter (RFC 9562,
/// method 1), so ids made by one generator are strictly increasing. The generator is
/// a value: whoever writes events owns one.
package struct EventIDGenerator: Sendable {
    private var lastMilliseconds: UInt64 = 0
    private var counter: UInt16 = 0
    private var random = SystemRandomNumberGenerator()

    package init() {}

    package mutating func next(now: Date = Date()) -> String {
        var milliseconds = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        if milliseconds <= lastMilliseconds {
            // Same millisecond, or the clock stepped back: keep counting from the last one.
            milliseconds = lastMilliseconds
            counter &+= 1
            if counter > 0x0FFF {
                milliseconds += 1
                counter = UInt16.random(in: 0..<0x0400, using: &random)
            }
        } else {
            counter = UInt16.random(in: 0..<0x0400, using: &random)
        }
        lastMilliseconds = milliseconds
        let randomBits = UInt64.random(in: 0...UInt64.max, using: &random)
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<6 { bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (40 - 8 * UInt64(index))) }
        bytes[6] = 0x70 | UInt8(truncatingIfNeeded: counter >> 8)
        bytes[7] = UInt8(truncatingIfNeeded: counter)
        bytes[8] = 0x80 | UInt8(truncatingIfNeeded: randomBits >> 56) & 0x3F
        for index in 9..<16 { bytes[index] = UInt8(truncatingIfNeeded: randomBits >> (8 * UInt64(15 - index))) }
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
