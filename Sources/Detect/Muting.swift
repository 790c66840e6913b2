import Foundation
import ChatBridgeCore

/// Reads a chat's `muted_until` the way events.md defines it.
///
/// `null` or absent: not muted. `-1`: muted with no end. A number: a Unix time, in
/// milliseconds when above 10^11, else seconds. A string: an ISO 8601 date (or a number
/// written as a string). A chat is muted while that time is in the future.
package enum Muting {
    /// When the mute ends: `.distantFuture` for `-1`, `nil` when not muted at all or
    /// when the value cannot be read as a time.
    package static func mutedUntil(_ value: JSONValue?) -> Date? {
        guard let value else { return nil }
        switch value {
        case .int(let number): return date(fromUnixNumber: Double(number))
        case .double(let number): return date(fromUnixNumber: number)
        case .string(let text):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if let number = Double(trimmed) { return date(fromUnixNumber: number) }
            return Timestamp.parseISO8601(trimmed)
        default: return nil
        }
    }

    /// Whether a chat whose `muted_until` is `value` is muted at `now`.
    package static func isMuted(_ value: JSONValue?, at now: Date) -> Bool {
        guard let until = mutedUntil(value) else { return false }
        return until > now
    }

    private static func date(fromUnixNumber number: Double) -> Date? {
        if number == -1 { return .distantFuture }
        guard number.isFinite, number >= 0 else { return nil }
        return Date(timeIntervalSince1970: number > 1e11 ? number / 1000 : number)
    }
}
