import CJSONStructure
import ChatBridgeCore
/// One chat of a page, found without decoding it.
///
/// `range` locates the item's JSON object in the page body, so the raw bytes can be
/// stored, fingerprinted or decoded later; `fingerprint` is ``ChatFingerprint`` of exactly
/// those bytes. The `id`, `account_id` and `account_type` strings are located, not
/// decoded: an unchanged chat is recognised by ``key`` and ``fingerprint`` alone, and only
/// the chats a poll reports become `String`s (``ChatPage/id(of:)``).
package struct ScannedItem: Sendable, Hashable {
    /// The byte range of the item's object (from `{` to `}` inclusive) in the page body.
    package var range: Range<Int>
    /// XXH64 of the bytes in `range`, with the fingerprint seed given to the scanner.
    package var fingerprint: UInt64
    /// The ``ChatKey`` of the chat's `id` (of its text, escapes resolved).
    package var key: ChatKey
    /// The chat's `id` (never empty).
    package var id: ScannedString
    /// The chat's `account_id`, when it is a string.
    package var accountID: ScannedString?
    /// The chat's `account_type`, when it is a string.
    package var accountType: ScannedString?

    package init(
        range: Range<Int>, fingerprint: UInt64, key: ChatKey, id: ScannedString, accountID: ScannedString?,
        accountType: ScannedString?
    ) {
        self.range = range
        self.fingerprint = fingerprint
        self.key = key
        self.id = id
        self.accountID = accountID
        self.accountType = accountType
    }
}

/// A string value of a page body, validated and located but not decoded.
package struct ScannedString: Sendable, Hashable {
    /// The bytes between the quotes.
    package var contents: Range<Int>
    /// Whether any escape is among them (then ``text(in:)`` resolves it).
    package var hasEscapes: Bool

    package init(contents: Range<Int>, hasEscapes: Bool) {
        self.contents = contents
        self.hasEscapes = hasEscapes
    }

    /// The text, escapes resolved the way `JSONValue`'s parser resolves them (a lone
    /// UTF-16 surrogate becomes U+FFFD). `body` is the body the page was scanned from.
    package func text(in body: UnsafeRawBufferPointer) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: body[contents])
        guard hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        // Validated already: let `JSONValue`'s parser resolve the escapes, from the
        // opening quote to the closing one, so that both read strings the same way.
        var parser = JSONParser(UnsafeRawBufferPointer(rebasing: body[(contents.lowerBound - 1)..<(contents.upperBound + 1)]))
        return (try? parser.parseString()) ?? String(decoding: raw, as: UTF8.self)
    }

    /// The text, in a body held as bytes.
    package func text(in body: [UInt8]) -> String {
        body.withUnsafeBytes { text(in: $0) }
    }
}

/// A chat of a page whose bytes have the fingerprint of a stored chat: only its end was
/// found, by following its strings and brackets (``ChatPageScanner/objectEnd(in:from:)``).
package struct RecognisedItem: Sendable, Hashable {
    /// The byte range of the item's object in the page body.
    package var range: Range<Int>
    /// XXH64 of the bytes in `range`, with the scanner's fingerprint seed.
    package var fingerprint: UInt64

    package init(range: Range<Int>, fingerprint: UInt64) {
        self.range = range
        self.fingerprint = fingerprint
    }
}

/// What ``ChatPageScanner`` found in one page of "List all chats".
package struct ScannedPage: Sendable, Hashable {
    /// The page's chats that were scanned in full, in the order of the page.
    package var items: [ScannedItem]
    /// The page's chats that were recognised by their fingerprint instead (only when the
    /// scan was asked to recognise chats), in the order of the page.
    package var recognised: [RecognisedItem]
    /// The cursor of the next page, or `nil` on the last page.
    package var cursor: String?

    package init(items: [ScannedItem], recognised: [RecognisedItem] = [], cursor: String?) {
        self.items = items
        self.recognised = recognised
        self.cursor = cursor
    }

    /// How many chats the page lists.
    package var itemCount: Int { items.count + recognised.count }
}

/// Why a page body is not a usable page of "List all chats", and where.
///
/// ```
/// item 17: chat has no string "id"
/// item 3: invalid JSON at byte 1804: unterminated string
/// invalid JSON at byte 0: unexpected end of input
/// ```
package struct ChatPageScanError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    package var message: String
    /// The byte offset in the body where the JSON stops being valid, for syntax errors.
    package var offset: Int?
    /// The item concerned, counted from 1 in page order, when the problem is inside one.
    package var item: Int?

    package init(message: String, offset: Int? = nil, item: Int? = nil) {
        self.message = message
        self.offset = offset
        self.item = item
    }

    package var description: String {
        var text = ""
        if let item { text += "item \(item): " }
        if let offset { text += "invalid JSON at byte \(offset): " }
        return text + message
    }
}

/// Finds the chats of a "List all chats" page body without decoding them.
///
/// The scanner reads the body once: it validates that the whole body is JSON (RFC 8259,
/// UTF-8), that it is an object whose `items` is an array of objects and whose `cursor`
/// is a string or `null` (absent means `null`), and for each item it records the item's
/// byte range, where its top-level `id`, `account_id` and `account_type` strings are, the
/// ``ChatKey`` of its id and the ``ChatFingerprint`` of its bytes. Nothing else is decoded: at 100,000 chats per poll, most
/// of which did not change, decoding is the cost worth avoiding.
///
/// ```swift
/// let page = try ChatPageScanner.scan(body, fingerprintSeed: seed)
/// for item in page.items where item.fingerprint != storedFingerprints[item.key] {
///     let id = item.id.text(in: body)
///     let chat = try JSONValue.parse(body[item.range])
/// }
/// ```
///
/// Whatever the scanner accepts, `JSONValue.parse` accepts for
/// each item's bytes: nesting is limited the same way (512 levels inside an item) and
/// numbers out of `Double`'s range are refused here too.
package enum ChatPageScanner {
    /// How deeply values may nest inside one item (the item itself is level 1), the limit
    /// of ``JSONValue``'s parser.
    package static let maxNestingDepth = 512

    /// Scans a page body.
    ///
    /// - Parameter recognising: when given, each item's end is first found by following
    ///   only its strings and brackets, and its bytes fingerprinted; `recognising` is asked
    ///   about all the page's fingerprints at once, and an item whose fingerprint it knows
    ///   (the bytes of a stored chat, validated when they were stored) goes to
    ///   ``ScannedPage/recognised`` without being validated or searched for its `id`.
    ///   Every other item is scanned in full, and so is the page around the items; a page
    ///   with any problem is scanned again without recognising, so that its error is the
    ///   one a plain scan reports.
    package static func scan(
        _ body: UnsafeRawBufferPointer, fingerprintSeed: UInt64, recognising: (([UInt64]) -> [Bool])? = nil
    ) throws(ChatPageScanError) -> ScannedPage {
        var scanner = PageScanner(body, fingerprintSeed: fingerprintSeed)
        do {
            return try scanner.scanPage(recognising: recognising)
        } catch where recognising != nil {
            var plain = PageScanner(body, fingerprintSeed: fingerprintSeed)
            return try plain.scanPage(recognising: nil)
        }
    }

    /// Scans a page body.
    package static func scan(
        _ body: [UInt8], fingerprintSeed: UInt64, recognising: (([UInt64]) -> [Bool])? = nil
    ) throws(ChatPageScanError) -> ScannedPage {
        // `withUnsafeBytes` rethrows untyped errors; carry the typed one out as a value.
        let result = body.withUnsafeBytes { buffer -> Result<ScannedPage, ChatPageScanError> in
            do throws(ChatPageScanError) {
                return .success(try scan(buffer, fingerprintSeed: fingerprintSeed, recognising: recognising))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Scans in full the item at `range` of a page body that ``scan(_:fingerprintSeed:recognising:)``
    /// recognised, for a poll that needs its `id` after all.
    package static func item(
        in body: UnsafeRawBufferPointer, range: Range<Int>, fingerprintSeed: UInt64
    ) throws(ChatPageScanError) -> ScannedItem {
        var scanner = PageScanner(UnsafeRawBufferPointer(rebasing: body[..<range.upperBound]), fingerprintSeed: fingerprintSeed)
        scanner.index = range.lowerBound
        let item = try scanner.scanItem()
        guard scanner.index == range.upperBound else { throw scanner.syntaxError("the item does not end where it was found to") }
        return item
    }

    /// Where the object that starts at `start` (its `{`) ends, one past its `}`, found by
    /// following only its strings and brackets; `nil` when no end is found.
    ///
    /// Nothing is validated: the bytes are of use only if their fingerprint is one the
    /// snapshot already holds (identical bytes, validated when they were first stored).
    /// For bytes that ``scan(_:fingerprintSeed:)`` accepts as an item, the end is the
    /// end of that item's range. For any bytes at all, the answer is
    /// ``objectEndByteByByte(in:from:)``'s, found 64 bytes at a time: masks of each block's
    /// quotes, backslashes and brackets from vector instructions, the bytes inside strings
    /// worked out from them, and only the brackets outside strings visited (the C target
    /// `CJSONStructure`). A quarter of the time of following each byte, on chats. On a
    /// processor without a vector path (neither x86-64 nor ARM64), each byte is followed.
    package static func objectEnd(in body: UnsafeRawBufferPointer, from start: Int) -> Int? {
        #if arch(x86_64) || arch(arm64)
        objectEnd(in: body, from: start, masks: .vector)
        #else
        objectEndByteByByte(in: body, from: start)
        #endif
    }

    /// How ``objectEnd(in:from:masks:)`` makes the masks of a 64-byte block.
    package enum BlockMasks: CaseIterable, Sendable {
        /// With the processor's vector instructions where there is a path for it (SSE2 on
        /// x86-64, NEON on ARM64), else a byte at a time.
        case vector
        /// A byte at a time, as on a processor without a vector path.
        case portable
    }

    /// ``objectEnd(in:from:)`` with the block masks made as `masks` says: the same answer
    /// either way (the tests and the fuzz target compare them).
    package static func objectEnd(in body: UnsafeRawBufferPointer, from start: Int, masks: BlockMasks) -> Int? {
        precondition(start >= 0, "an item cannot start before the body")
        guard start < body.count, let base = body.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        let found = switch masks {
        case .vector: chatbridge_json_object_end(base, body.count, start)
        case .portable: chatbridge_json_object_end_portable(base, body.count, start)
        }
        switch found {
        case CHATBRIDGE_JSON_NO_END:
            return nil
        case CHATBRIDGE_JSON_UNDECIDED:
            // A backslash outside every string, which JSON never has: follow each byte.
            return objectEndByteByByte(in: body, from: start)
        default:
            return found
        }
    }

    /// ``objectEnd(in:from:)`` by its definition, following each byte: to the closing
    /// quote of each string (eight bytes at a time; a backslash hides the byte after it),
    /// counting the brackets outside strings, up to the `}` or `]` that brings their depth
    /// to 0 or below. The reference that the block walk is tested against, and its answer
    /// when a backslash stands outside every string.
    package static func objectEndByteByByte(in body: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let end = body.count
        var position = start
        var depth = 0
        while position < end {
            switch body[position] {
            case ASCII.quote:
                position += 1
                // To the closing quote, eight bytes at a time; an escape hides the byte after it.
                while true {
                    while position + 8 <= end {
                        let word = UInt64(littleEndian: body.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                        let found = PageScanner.quotesAndBackslashes(word)
                        if found == 0 {
                            position += 8
                        } else {
                            position += found.trailingZeroBitCount >> 3
                            break
                        }
                    }
                    guard position < end else { return nil }
                    let byte = body[position]
                    if byte == ASCII.quote {
                        position += 1
                        break
                    }
                    position += byte == ASCII.backslash ? 2 : 1
                }
            case ASCII.openBrace, ASCII.openBracket:
                depth += 1
                position += 1
            case ASCII.closeBrace, ASCII.closeBracket:
                depth -= 1
                position += 1
                if depth <= 0 { return position }
            default:
                position += 1
            }
        }
        return nil
    }

    /// Scans a page body given as text (for tests and tools).
    package static func scan(_ body: String, fingerprintSeed: UInt64) throws(ChatPageScanError) -> ScannedPage {
        try scan(Array(body.utf8), fingerprintSeed: fingerprintSeed)
    }
}

// MARK: - The scanner

/// The members of an item that the scanner extracts.
private enum ItemKey {
    case id, accountID, accountType, other
}

/// A single pass over a page body. Every read checks `index < end` first; the body is
/// never written.
private struct PageScanner {
    let bytes: UnsafeRawBufferPointer
    let end: Int
    let fingerprintSeed: UInt64
    var index = 0
    /// The item being scanned, counted from 1, for messages.
    var currentItem: Int?

    init(_ bytes: UnsafeRawBufferPointer, fingerprintSeed: UInt64) {
        self.bytes = bytes
        self.end = bytes.count
        self.fingerprintSeed = fingerprintSeed
    }

    // MARK: Errors

    func syntaxError(_ message: String, at offset: Int? = nil) -> ChatPageScanError {
        ChatPageScanError(message: message, offset: offset ?? index, item: currentItem)
    }

    func shapeError(_ message: String) -> ChatPageScanError {
        ChatPageScanError(message: message, offset: nil, item: currentItem)
    }

    func unexpected(_ expectation: String) -> ChatPageScanError {
        index < end ? syntaxError("expected \(expectation)") : syntaxError("unexpected end of input")
    }

    // MARK: The page

    mutating func scanPage(recognising: (([UInt64]) -> [Bool])?) throws(ChatPageScanError) -> ScannedPage {
        skipWhitespace()
        guard index < end else { throw syntaxError("unexpected end of input") }
        guard bytes[index] == ASCII.openBrace else {
            // Still report invalid JSON as such, ahead of the shape.
            try skipValue(depth: 0)
            skipWhitespace()
            guard index == end else { throw syntaxError("unexpected text after the value") }
            throw shapeError("the page is not a JSON object")
        }
        index += 1

        var items: [ScannedItem]?
        var recognised: [RecognisedItem] = []
        // Absent means null: the last page.
        var cursor: String?
        // A member written twice counts by its last copy, as in `JSONValue.parse`: the
        // shape problem of an earlier copy is kept and thrown only if no later copy
        // replaces it (syntax errors end the scan at once either way).
        var itemsProblem: ChatPageScanError?
        var cursorProblem: ChatPageScanError?

        skipWhitespace()
        if index < end, bytes[index] == ASCII.closeBrace {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard index < end, bytes[index] == ASCII.quote else { throw unexpected("a string key") }
                let key = try scanString()
                try expectColon()
                if matches(key, "items") {
                    let start = index
                    do {
                        (items, recognised) = try scanItems(recognising: recognising)
                        itemsProblem = nil
                    } catch where error.offset == nil {
                        // A shape problem: check the rest of the value is JSON, keep the problem.
                        index = start
                        currentItem = nil
                        try skipValue(depth: 1)
                        items = nil
                        recognised = []
                        itemsProblem = error
                    }
                } else if matches(key, "cursor") {
                    if index < end, bytes[index] == ASCII.quote {
                        cursor = try scanString().text(in: bytes)
                        cursorProblem = nil
                    } else {
                        let start = index
                        try skipValue(depth: 1)
                        cursor = nil
                        cursorProblem = equals(start..<index, "null")
                            ? nil : shapeError("\"cursor\" is neither a string nor null")
                    }
                } else {
                    try skipValue(depth: 1)
                }
                skipWhitespace()
                guard index < end else { throw syntaxError("unexpected end of input in an object") }
                if bytes[index] == ASCII.comma { index += 1; continue }
                if bytes[index] == ASCII.closeBrace { index += 1; break }
                throw syntaxError("expected ',' or '}'")
            }
        }
        skipWhitespace()
        guard index == end else { throw syntaxError("unexpected text after the value") }

        if let itemsProblem { throw itemsProblem }
        if let cursorProblem { throw cursorProblem }
        guard let items else { throw shapeError("the page has no \"items\" array") }
        if let cursor, cursor.isEmpty {
            // The API documents cursors as non-empty; guessing "last page" here could
            // silently cut a snapshot short (and report every later chat as removed).
            throw shapeError("\"cursor\" is an empty string")
        }
        return ScannedPage(items: items, recognised: recognised, cursor: cursor)
    }

    /// Scans the value of `items`, which must be an array of chat objects.
    mutating func scanItems(
        recognising: (([UInt64]) -> [Bool])?
    ) throws(ChatPageScanError) -> (items: [ScannedItem], recognised: [RecognisedItem]) {
        guard index < end else { throw syntaxError("unexpected end of input") }
        guard bytes[index] == ASCII.openBracket else {
            try skipValue(depth: 1)
            throw shapeError("\"items\" is not an array")
        }
        index += 1
        if let recognising {
            let start = index
            if let found = try recognisedItems(recognising) { return found }
            index = start
        }
        var items: [ScannedItem] = []
        // A full page of 250 chats of ~600 bytes; avoids regrowing in the common case.
        items.reserveCapacity(min(256, end / 64 + 1))
        skipWhitespace()
        if index < end, bytes[index] == ASCII.closeBracket {
            index += 1
            return (items, [])
        }
        while true {
            skipWhitespace()
            currentItem = items.count + 1
            items.append(try scanItem())
            currentItem = nil
            skipWhitespace()
            guard index < end else { throw syntaxError("unexpected end of input in an array") }
            if bytes[index] == ASCII.comma { index += 1; continue }
            if bytes[index] == ASCII.closeBracket { index += 1; return (items, []) }
            throw syntaxError("expected ',' or ']'")
        }
    }

    /// The elements of `items` (from just after its `[`), each located by its strings and
    /// brackets and fingerprinted, then `recognising` asked about them all at once; the
    /// ones it does not know are scanned in full. `nil` (and `index` anywhere) when the
    /// array is not a plain list of objects: the caller scans it in full.
    mutating func recognisedItems(
        _ recognising: ([UInt64]) -> [Bool]
    ) throws(ChatPageScanError) -> (items: [ScannedItem], recognised: [RecognisedItem])? {
        var located: [RecognisedItem] = []
        located.reserveCapacity(min(256, end / 64 + 1))
        skipWhitespace()
        if index < end, bytes[index] == ASCII.closeBracket {
            index += 1
            return ([], [])
        }
        while true {
            skipWhitespace()
            guard index < end, bytes[index] == ASCII.openBrace,
                  let itemEnd = ChatPageScanner.objectEnd(in: bytes, from: index)
            else { return nil }
            let range = index..<itemEnd
            located.append(RecognisedItem(
                range: range, fingerprint: XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[range]), seed: fingerprintSeed)))
            index = itemEnd
            skipWhitespace()
            guard index < end else { return nil }
            if bytes[index] == ASCII.comma { index += 1; continue }
            if bytes[index] == ASCII.closeBracket { index += 1; break }
            return nil
        }
        let afterArray = index
        let known = recognising(located.map(\.fingerprint))
        guard known.count == located.count else { return nil }
        var items: [ScannedItem] = []
        var recognised: [RecognisedItem] = []
        recognised.reserveCapacity(located.count)
        for (number, (item, isKnown)) in zip(located, known).enumerated() {
            if isKnown {
                recognised.append(item)
                continue
            }
            index = item.range.lowerBound
            currentItem = number + 1
            items.append(try scanItem())
            currentItem = nil
            guard index == item.range.upperBound else { return nil }
        }
        index = afterArray
        return (items, recognised)
    }

    /// Scans one element of `items`: an object with a non-empty string `id`.
    mutating func scanItem() throws(ChatPageScanError) -> ScannedItem {
        guard index < end else { throw syntaxError("unexpected end of input") }
        let start = index
        guard bytes[index] == ASCII.openBrace else {
            try skipValue(depth: 0)
            throw shapeError("chat is not a JSON object")
        }
        index += 1

        // Later duplicates win, as in JSONValue.parse: `{"id":"a","id":null}` has no id.
        var id: ScannedString?
        var accountID: ScannedString?
        var accountType: ScannedString?

        skipWhitespace()
        if index < end, bytes[index] == ASCII.closeBrace {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard index < end, bytes[index] == ASCII.quote else { throw unexpected("a string key") }
                let key = itemKey(try scanString())
                try expectColon()
                if key != .other, index < end, bytes[index] == ASCII.quote {
                    let value = try scanString()
                    switch key {
                    case .id: id = value
                    case .accountID: accountID = value
                    case .accountType: accountType = value
                    case .other: break
                    }
                } else {
                    try skipValue(depth: 1)
                    switch key {
                    case .id: id = nil
                    case .accountID: accountID = nil
                    case .accountType: accountType = nil
                    case .other: break
                    }
                }
                skipWhitespace()
                guard index < end else { throw syntaxError("unexpected end of input in an object") }
                if bytes[index] == ASCII.comma { index += 1; continue }
                if bytes[index] == ASCII.closeBrace { index += 1; break }
                throw syntaxError("expected ',' or '}'")
            }
        }

        // An escape always stands for at least one character: only an empty token is empty.
        guard let id, !id.contents.isEmpty else { throw shapeError("chat has no string \"id\"") }
        // A NUL (only an escape can write one) would end the string where the store, an
        // exec sink's environment or a log reads it as C text: two chats would share an id.
        // Most ids have no escape: this costs them one flag test each.
        if id.hasEscapes || accountID?.hasEscapes == true || accountType?.hasEscapes == true {
            try refuseNUL(id: id, accountID: accountID, accountType: accountType)
        }
        let key: ChatKey
        if id.hasEscapes {
            key = ChatKey(id: id.text(in: bytes))
        } else {
            key = ChatKey(utf8: UnsafeRawBufferPointer(rebasing: bytes[id.contents]))
        }
        let range = start..<index
        let fingerprint = XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[range]), seed: fingerprintSeed)
        return ScannedItem(
            range: range, fingerprint: fingerprint, key: key, id: id, accountID: accountID, accountType: accountType)
    }

    /// Throws when the id or an account field holds a NUL; out of line, so that the
    /// common item (no escape in any of them) carries none of this code.
    @inline(never)
    func refuseNUL(id: ScannedString, accountID: ScannedString?, accountType: ScannedString?) throws(ChatPageScanError) {
        for (name, field) in [("id", id), ("account_id", accountID), ("account_type", accountType)] {
            if let field, field.hasEscapes, field.text(in: bytes).unicodeScalars.contains("\u{0}") {
                throw shapeError("chat \"\(name)\" holds a NUL character (\\u0000)")
            }
        }
    }

    // MARK: Keys

    func itemKey(_ token: ScannedString) -> ItemKey {
        if !token.hasEscapes {
            switch token.contents.count {
            case 2: return equals(token.contents, "id") ? .id : .other
            case 10: return equals(token.contents, "account_id") ? .accountID : .other
            case 12: return equals(token.contents, "account_type") ? .accountType : .other
            default: return .other
            }
        }
        switch token.text(in: bytes) {
        case "id": return .id
        case "account_id": return .accountID
        case "account_type": return .accountType
        default: return .other
        }
    }

    func matches(_ token: ScannedString, _ key: StaticString) -> Bool {
        token.hasEscapes ? token.text(in: bytes) == key.description : equals(token.contents, key)
    }

    func equals(_ range: Range<Int>, _ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard range.count == count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[range.lowerBound + offset] != start[offset] {
            return false
        }
        return true
    }

    // MARK: Values

    @inline(__always)
    mutating func skipWhitespace() {
        while index < end {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func expectColon() throws(ChatPageScanError) {
        skipWhitespace()
        guard index < end, bytes[index] == ASCII.colon else { throw unexpected("':'") }
        index += 1
        skipWhitespace()
    }

    /// Validates one value starting at `index` and moves past it. `depth` counts the
    /// containers around the value, as `JSONValue`'s parser does.
    mutating func skipValue(depth: Int) throws(ChatPageScanError) {
        guard depth < ChatPageScanner.maxNestingDepth else { throw syntaxError("nested too deeply") }
        guard index < end else { throw syntaxError("unexpected end of input") }
        switch bytes[index] {
        case ASCII.quote: _ = try scanString()
        case ASCII.openBrace: try skipObject(depth: depth)
        case ASCII.openBracket: try skipArray(depth: depth)
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case ASCII.minus, ASCII.zero...ASCII.nine: try skipNumber()
        default: throw syntaxError("unexpected character")
        }
    }

    mutating func skipObject(depth: Int) throws(ChatPageScanError) {
        index += 1
        skipWhitespace()
        if index < end, bytes[index] == ASCII.closeBrace {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard index < end, bytes[index] == ASCII.quote else { throw unexpected("a string key") }
            _ = try scanString()
            try expectColon()
            try skipValue(depth: depth + 1)
            skipWhitespace()
            guard index < end else { throw syntaxError("unexpected end of input in an object") }
            if bytes[index] == ASCII.comma { index += 1; continue }
            if bytes[index] == ASCII.closeBrace { index += 1; return }
            throw syntaxError("expected ',' or '}'")
        }
    }

    mutating func skipArray(depth: Int) throws(ChatPageScanError) {
        index += 1
        skipWhitespace()
        if index < end, bytes[index] == ASCII.closeBracket {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            try skipValue(depth: depth + 1)
            skipWhitespace()
            guard index < end else { throw syntaxError("unexpected end of input in an array") }
            if bytes[index] == ASCII.comma { index += 1; continue }
            if bytes[index] == ASCII.closeBracket { index += 1; return }
            throw syntaxError("expected ',' or ']'")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(ChatPageScanError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= end else { throw syntaxError("unexpected end of input") }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != start[offset] {
            throw syntaxError("invalid literal")
        }
        index += count
    }

    mutating func skipNumber() throws(ChatPageScanError) {
        let start = index
        var needsRangeCheck = false
        if bytes[index] == ASCII.minus { index += 1 }
        guard index < end, (ASCII.zero...ASCII.nine).contains(bytes[index]) else { throw syntaxError("invalid number") }
        if bytes[index] == ASCII.zero {
            index += 1
        } else {
            while index < end, (ASCII.zero...ASCII.nine).contains(bytes[index]) { index += 1 }
        }
        if index < end, bytes[index] == ASCII.dot {
            index += 1
            let digits = index
            while index < end, (ASCII.zero...ASCII.nine).contains(bytes[index]) { index += 1 }
            guard index > digits else { throw syntaxError("invalid number") }
        }
        if index < end, bytes[index] == ASCII.lowerE || bytes[index] == ASCII.upperE {
            needsRangeCheck = true
            index += 1
            if index < end, bytes[index] == ASCII.plus || bytes[index] == ASCII.minus { index += 1 }
            let digits = index
            while index < end, (ASCII.zero...ASCII.nine).contains(bytes[index]) { index += 1 }
            guard index > digits else { throw syntaxError("invalid number") }
        }
        // Only an exponent or an absurdly long mantissa can leave Double's range; keep the
        // common case free of a conversion.
        if needsRangeCheck || index - start > 300 {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw syntaxError("number out of range", at: start)
            }
        }
    }

    /// Validates a string starting at the opening quote at `index` (escapes, no control
    /// characters, well-formed UTF-8) and moves past its closing quote.
    mutating func scanString() throws(ChatPageScanError) -> ScannedString {
        let start = index + 1
        // A local copy of the position: the hot loop then stays in registers.
        var position = start
        var hasEscapes = false
        while true {
            // Eight bytes at a time while none of them needs a look: no quote, backslash,
            // control character or non-ASCII byte.
            while position + 8 <= end {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                let special = Self.specialBytes(word)
                if special == 0 {
                    position += 8
                } else {
                    position += special.trailingZeroBitCount >> 3
                    break
                }
            }
            guard position < end else { throw syntaxError("unterminated string", at: start - 1) }
            let byte = bytes[position]
            if byte == ASCII.quote {
                index = position + 1
                return ScannedString(contents: start..<position, hasEscapes: hasEscapes)
            } else if byte == ASCII.backslash {
                hasEscapes = true
                index = position
                try skipEscape()
                position = index
            } else if byte < 0x20 {
                index = position
                throw syntaxError("control character in a string")
            } else if byte >= 0x80 {
                index = position
                try skipUTF8Sequence()
                position = index
            } else {
                position += 1
            }
        }
    }

    /// A word with the high bit set in (at least) the first byte of `word`, in memory
    /// order, that is a quote, a backslash, below 0x20 or at least 0x80; zero when none is.
    /// Bits above the first such byte may be spurious; the lowest one is exact.
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(ASCII.quote))
        let backslashes = word ^ (ones &* UInt64(ASCII.backslash))
        let isQuote = (quotes &- ones) & ~quotes
        let isBackslash = (backslashes &- ones) & ~backslashes
        let isControl = (word &- ones &* 0x20) & ~word
        return (isQuote | isBackslash | isControl | word) & highs
    }

    /// A word with the high bit set in (at least) the first byte of `word`, in memory
    /// order, that is a quote or a backslash; zero when none is.
    @inline(__always)
    static func quotesAndBackslashes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* UInt64(ASCII.quote))
        let backslashes = word ^ (ones &* UInt64(ASCII.backslash))
        return (((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes)) & highs
    }

    mutating func skipEscape() throws(ChatPageScanError) {
        let escapeStart = index
        index += 1
        guard index < end else { throw syntaxError("unterminated string") }
        switch bytes[index] {
        case ASCII.quote, ASCII.backslash, ASCII.slash,
            UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            index += 1
        case ASCII.lowerU:
            index += 1
            guard index + 4 <= end, Self.hexValue(bytes, at: index) != nil else {
                throw syntaxError("invalid \\u escape", at: escapeStart)
            }
            index += 4
        default:
            throw syntaxError("invalid escape", at: escapeStart)
        }
    }

    /// Validates the UTF-8 sequence whose lead byte (at least 0x80) is at `index`.
    mutating func skipUTF8Sequence() throws(ChatPageScanError) {
        guard let length = UTF8Validation.sequenceLength(bytes, at: index) else { throw syntaxError("invalid UTF-8") }
        index += length
    }

    static func hexValue(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32? {
        var value: UInt32 = 0
        for position in offset..<(offset + 4) {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let lowerU = UInt8(ascii: "u")
}
