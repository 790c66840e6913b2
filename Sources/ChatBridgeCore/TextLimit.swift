import Foundation
/// Cutting text to a size without splitting a character.
package enum TextLimit {
    /// The longest prefix of `text` of whole characters whose UTF-8 form fits in
    /// `maxUTF8Bytes`.
    package static func prefix(_ text: String, maxUTF8Bytes: Int) -> String {
        guard text.utf8.count > maxUTF8Bytes else { return text }
        return String(text[..<end(of: text, budget: maxUTF8Bytes) { text.utf8.distance(from: $0, to: $1) }])
    }

    /// The longest prefix of `text` of whole characters (grapheme clusters) that takes at
    /// most `maxUTF16Units` UTF-16 code units, with `…` at its end when it had to be cut.
    /// Counting UTF-16 units is the strictest common way services count "characters": a
    /// text that fits here fits whether they count graphemes, scalars or UTF-16 units.
    package static func truncated(_ text: String, maxUTF16Units: Int) -> String {
        guard text.utf16.count > maxUTF16Units else { return text }
        let budget = maxUTF16Units - 1 // room for "…", one UTF-16 unit
        guard budget >= 0 else { return "" }
        return String(text[..<end(of: text, budget: budget) { text.utf16.distance(from: $0, to: $1) }]) + "…"
    }

    /// Where the longest run of whole characters from the start of `text` ends whose
    /// sizes (as `size` measures each character's range) add up to at most `budget`.
    private static func end(
        of text: String, budget: Int, size: (String.Index, String.Index) -> Int
    ) -> String.Index {
        var used = 0
        var end = text.startIndex
        for index in text.indices {
            let next = text.index(after: index)
            used += size(index, next)
            if used > budget { break }
            end = next
        }
        return end
    }
}
