/// The JSON the simulator stores and serves: objects keep their key order and numbers keep
/// the exact text they arrived with.
///
/// Chats posted through the control API may carry fields the simulator knows nothing about;
/// they must come back from `GET /api/v1/chats` exactly as they went in. `JSONSerialization`
/// would reorder keys and turn `1.0` into `1`, so the simulator parses and writes JSON itself:
///
/// ```swift
/// let chat = try SimulatorJSON.parse(#"{"id":"c1","x-extra":1.50}"#)
/// String(decoding: chat.serialized(), as: UTF8.self)   // {"id":"c1","x-extra":1.50}
/// ```
enum SimulatorJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, kept as its validated JSON text (`-12`, `1.50`, `3e8`).
    case number(String)
    case string(String)
    /// A string whose JSON text escapes a lone UTF-16 surrogate (`"half \ud83d"`), which
    /// no Swift `String` can hold: its literal, quotes included, exactly as it arrived (what
    /// it is served back as), and its text with U+FFFD in place of the surrogate (what
    /// filters compare).
    case rawString(literal: [UInt8], text: String)
    case array([SimulatorJSON])
    case object([Member])

    /// One `"key": value` pair of an object; objects are arrays of members so order survives.
    struct Member: Sendable, Equatable {
        var key: String
        var value: SimulatorJSON
        init(_ key: String, _ value: SimulatorJSON) {
            self.key = key
            self.value = value
        }
    }

    static func int(_ value: Int) -> SimulatorJSON { .number(String(value)) }
    static func int64(_ value: Int64) -> SimulatorJSON { .number(String(value)) }

    /// `.string(value)`, or `.null` when `value` is `nil`.
    static func optionalString(_ value: String?) -> SimulatorJSON {
        value.map(SimulatorJSON.string) ?? .null
    }

    var members: [Member]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var stringValue: String? {
        switch self {
        case .string(let text), .rawString(_, let text): text
        default: nil
        }
    }

    /// The value as a whole number, when it is a number without fraction or exponent
    /// that fits in 64 bits.
    var int64Value: Int64? {
        if case .number(let text) = self { return Int64(text) }
        return nil
    }

    /// The value as a number, whatever its form.
    var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

// MARK: - Object members

extension Array where Element == SimulatorJSON.Member {
    /// The value of the first member named `key`.
    subscript(field key: String) -> SimulatorJSON? {
        get { first(where: { $0.key == key })?.value }
    }

    /// Sets `key` in place when present (order is kept), appends it otherwise.
    mutating func set(_ key: String, _ value: SimulatorJSON) {
        if let index = firstIndex(where: { $0.key == key }) {
            self[index].value = value
        } else {
            append(SimulatorJSON.Member(key, value))
        }
    }
}

// MARK: - Writing

extension SimulatorJSON {
    /// Compact UTF-8 JSON text.
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    /// Appends the compact JSON text of this value to `out`.
    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let text): out.append(contentsOf: text.utf8)
        case .string(let s): Self.writeString(s, into: &out)
        case .rawString(let literal, _): out.append(contentsOf: literal)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (i, value) in values.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Writes `s` as a JSON string literal: quotes, backslashes and control characters are
    /// escaped, everything else is written as raw UTF-8.
    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

// MARK: - Parsing

/// Why a JSON text could not be read, and at which byte.
struct SimulatorJSONError: Error, Equatable, CustomStringConvertible {
    /// Offset of the offending byte in the input (0-based).
    var offset: Int
    var reason: String
    var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension SimulatorJSON {
    /// Nesting deeper than this is refused: control API bodies are untrusted input and
    /// recursion must not overflow the stack.
    static let maximumDepth = 256

    /// Parses one JSON value from `text`; only whitespace may follow it.
    static func parse(_ text: String) throws(SimulatorJSONError) -> SimulatorJSON {
        try parse(Array(text.utf8))
    }

    /// Parses one JSON value from UTF-8 `bytes`; only whitespace may follow it.
    static func parse(_ bytes: [UInt8]) throws(SimulatorJSONError) -> SimulatorJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected data after the value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func error(_ reason: String) -> SimulatorJSONError {
            SimulatorJSONError(offset: index, reason: reason)
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipWhitespace() {
            while let b = current, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { index += 1 }
        }

        mutating func expect(_ literal: String, value: SimulatorJSON) throws(SimulatorJSONError) -> SimulatorJSON {
            for expected in literal.utf8 {
                guard current == expected else { throw error("expected '\(literal)'") }
                index += 1
            }
            return value
        }

        mutating func parseValue(depth: Int) throws(SimulatorJSONError) -> SimulatorJSON {
            guard depth < SimulatorJSON.maximumDepth else { throw error("nesting deeper than \(SimulatorJSON.maximumDepth)") }
            guard let b = current else { throw error("unexpected end of input") }
            switch b {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return try parseStringValue()
            case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
            case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
            case UInt8(ascii: "n"): return try expect("null", value: .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character")
            }
        }

        mutating func parseObject(depth: Int) throws(SimulatorJSONError) -> SimulatorJSON {
            index += 1  // {
            var members: [Member] = []
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                index += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                members.append(Member(key, value))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .object(members)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        mutating func parseArray(depth: Int) throws(SimulatorJSONError) -> SimulatorJSON {
            index += 1  // [
            var values: [SimulatorJSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") {
                index += 1
                return .array(values)
            }
            while true {
                skipWhitespace()
                values.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return .array(values)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        mutating func parseNumber() throws(SimulatorJSONError) -> SimulatorJSON {
            let start = index
            func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
            if current == UInt8(ascii: "-") { index += 1 }
            if current == UInt8(ascii: "0") {
                index += 1
            } else if isDigit(current) {
                while isDigit(current) { index += 1 }
            } else {
                throw error("expected a digit")
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard isDigit(current) else { throw error("expected a digit after '.'") }
                while isDigit(current) { index += 1 }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard isDigit(current) else { throw error("expected a digit in the exponent") }
                while isDigit(current) { index += 1 }
            }
            return .number(String(decoding: bytes[start..<index], as: UTF8.self))
        }

        mutating func parseHex4() throws(SimulatorJSONError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let b = current else { throw error("unexpected end in \\u escape") }
                let digit: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw error("invalid hex digit in \\u escape")
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        /// A string value: a lone surrogate escape is kept as given (``SimulatorJSON/rawString(literal:text:)``).
        mutating func parseStringValue() throws(SimulatorJSONError) -> SimulatorJSON {
            let start = index
            var loneSurrogate = false
            let text = try parseString(loneSurrogate: &loneSurrogate)
            return loneSurrogate ? .rawString(literal: Array(bytes[start..<index]), text: text) : .string(text)
        }

        /// A string (a key): a lone surrogate escape is an error.
        mutating func parseString() throws(SimulatorJSONError) -> String {
            var loneSurrogate = false
            let text = try parseString(loneSurrogate: &loneSurrogate)
            guard !loneSurrogate else { throw error("unpaired surrogate") }
            return text
        }

        /// The text of a string; a lone surrogate escape becomes U+FFFD and sets `loneSurrogate`.
        mutating func parseString(loneSurrogate: inout Bool) throws(SimulatorJSONError) -> String {
            index += 1  // opening quote
            var utf8: [UInt8] = []
            while true {
                guard let b = current else { throw error("unterminated string") }
                switch b {
                case UInt8(ascii: "\""):
                    index += 1
                    guard let s = String(validating: utf8, as: UTF8.self) else {
                        throw error("string is not valid UTF-8")
                    }
                    return s
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let escape = current else { throw error("unterminated escape") }
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""): utf8.append(0x22)
                    case UInt8(ascii: "\\"): utf8.append(0x5C)
                    case UInt8(ascii: "/"): utf8.append(0x2F)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            // A high surrogate pairs with an escaped low surrogate that follows.
                            let afterHigh = index
                            if current == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") {
                                index += 2
                                let low = try parseHex4()
                                if (0xDC00..<0xE000).contains(low) {
                                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                                } else {
                                    index = afterHigh  // the next escape is read on its own
                                    loneSurrogate = true
                                    scalar = 0xFFFD
                                }
                            } else {
                                loneSurrogate = true
                                scalar = 0xFFFD
                            }
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            loneSurrogate = true
                            scalar = 0xFFFD
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                        UTF8.encode(unicode) { utf8.append($0) }
                    default: throw error("invalid escape")
                    }
                case 0x00..<0x20:
                    throw error("control character in string")
                default:
                    utf8.append(b)
                    index += 1
                }
            }
        }
    }
}
