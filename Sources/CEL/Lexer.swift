/// The expression text as code points, with what is needed to turn an offset into a
/// line and column.
struct SourceText: Sendable {
    let scalars: [Unicode.Scalar]
    /// Offsets at which each line starts (a line ends after `\n`, `\r\n` or a lone `\r`).
    private let lineStarts: [Int]

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
        var starts = [0]
        var i = 0
        while i < scalars.count {
            if scalars[i] == "\n" {
                starts.append(i + 1)
            } else if scalars[i] == "\r" {
                if i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                starts.append(i + 1)
            }
            i += 1
        }
        lineStarts = starts
    }

    /// 1-based line and column (in code points) of `offset`.
    func location(of offset: Int) -> (line: Int, column: Int) {
        var low = 0, high = lineStarts.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= offset { low = mid } else { high = mid - 1 }
        }
        return (low + 1, offset - lineStarts[low] + 1)
    }

    /// Where the first token starts: past leading spaces and `//` comments.
    var firstTokenOffset: Int {
        var i = 0
        while i < scalars.count {
            switch scalars[i] {
            case " ", "\t", "\n", "\r", "\u{0C}":
                i += 1
            case "/" where i + 1 < scalars.count && scalars[i + 1] == "/":
                while i < scalars.count, scalars[i] != "\n", scalars[i] != "\r" { i += 1 }
            default:
                return i
            }
        }
        return i
    }

    func error(_ message: String, at offset: Int) -> CELCompileError {
        let (line, column) = location(of: offset)
        return CELCompileError(message: message, line: line, column: column, offset: offset)
    }
}

/// Operators and punctuation.
enum Punctuation: String, Sendable {
    case plus = "+", minus = "-", star = "*", slash = "/", percent = "%"
    case bang = "!", equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case and = "&&", or = "||", question = "?", colon = ":", dot = ".", comma = ","
    case leftParen = "(", rightParen = ")", leftBracket = "[", rightBracket = "]", leftBrace = "{", rightBrace = "}"
    case `in` = "in"
}

enum TokenKind: Sendable, Equatable {
    case identifier(String)
    /// An int literal's magnitude: the sign is a separate `-` the parser folds in, which is
    /// how `-9223372036854775808` fits.
    case int(UInt64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bool(Bool)
    case null
    case punctuation(Punctuation)
    case end
}

struct Token: Sendable {
    let kind: TokenKind
    /// Code-point offset of the token's first character.
    let offset: Int
}

/// Splits CEL source into tokens (CEL spec, "Syntax").
struct Lexer {
    private let source: SourceText
    private var s: [Unicode.Scalar] { source.scalars }
    private var i = 0

    /// CEL sources longer than this are refused, as cel-go's default limit does.
    static let maximumLength = 100_000

    init(_ source: SourceText) { self.source = source }

    static func tokenize(_ source: SourceText) throws(CELCompileError) -> [Token] {
        guard source.scalars.count <= maximumLength else {
            throw source.error("expression is longer than \(maximumLength) characters", at: 0)
        }
        var lexer = Lexer(source)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? {
        i + ahead < s.count ? s[i + ahead] : nil
    }

    private static func isDigit(_ c: Unicode.Scalar?) -> Bool { c.map { ("0"..."9").contains($0) } ?? false }
    private static func isHexDigit(_ c: Unicode.Scalar?) -> Bool {
        guard let c else { return false }
        return ("0"..."9").contains(c) || ("a"..."f").contains(c) || ("A"..."F").contains(c)
    }
    private static func isIdentifierStart(_ c: Unicode.Scalar?) -> Bool {
        guard let c else { return false }
        return ("a"..."z").contains(c) || ("A"..."Z").contains(c) || c == "_"
    }
    private static func isIdentifierPart(_ c: Unicode.Scalar?) -> Bool { isIdentifierStart(c) || isDigit(c) }

    private mutating func skipSpaceAndComments() {
        while let c = peek() {
            switch c {
            case " ", "\t", "\n", "\r", "\u{0C}":
                i += 1
            case "/" where peek(1) == "/":
                while let d = peek(), d != "\n", d != "\r" { i += 1 }
            default:
                return
            }
        }
    }

    private mutating func next() throws(CELCompileError) -> Token {
        skipSpaceAndComments()
        let start = i
        guard let c = peek() else { return Token(kind: .end, offset: start) }

        if Self.isDigit(c) || (c == "." && Self.isDigit(peek(1))) {
            return Token(kind: try number(), offset: start)
        }
        if c == "\"" || c == "'" {
            return Token(kind: .string(try string(raw: false)), offset: start)
        }
        if Self.isIdentifierStart(c) {
            // String prefixes: r/R (raw), b/B (bytes), in either order.
            let lower = Character(c).lowercased()
            if lower == "r" || lower == "b" {
                var prefix = [lower]
                var ahead = 1
                if let second = peek(1), Self.isIdentifierStart(second),
                    Set(["r", "b"]).subtracting(prefix).contains(Character(second).lowercased())
                {
                    prefix.append(Character(second).lowercased())
                    ahead = 2
                }
                if let quote = peek(ahead), quote == "\"" || quote == "'" {
                    if prefix.contains("b") {
                        throw source.error("bytes literals are not supported", at: start)
                    }
                    i += ahead
                    return Token(kind: .string(try string(raw: true)), offset: start)
                }
            }
            while Self.isIdentifierPart(peek()) { i += 1 }
            let word = String(String.UnicodeScalarView(s[start..<i]))
            switch word {
            case "true": return Token(kind: .bool(true), offset: start)
            case "false": return Token(kind: .bool(false), offset: start)
            case "null": return Token(kind: .null, offset: start)
            case "in": return Token(kind: .punctuation(.in), offset: start)
            default: return Token(kind: .identifier(word), offset: start)
            }
        }

        let two = peek(1).map { String(Character(c)) + String(Character($0)) } ?? ""
        if let punctuation = Punctuation(rawValue: two), two.count == 2 {
            i += 2
            return Token(kind: .punctuation(punctuation), offset: start)
        }
        if let punctuation = Punctuation(rawValue: String(Character(c))), punctuation != .in {
            i += 1
            return Token(kind: .punctuation(punctuation), offset: start)
        }
        switch c {
        case "=": throw source.error("unexpected '='; use '==' to compare", at: start)
        case "&": throw source.error("unexpected '&'; use '&&'", at: start)
        case "|": throw source.error("unexpected '|'; use '||'", at: start)
        case "`": throw source.error("quoted field names are not supported", at: start)
        default: throw source.error("unexpected character \(CELStrings.quoted(String(Character(c))))", at: start)
        }
    }

    // MARK: Numbers

    private mutating func number() throws(CELCompileError) -> TokenKind {
        let start = i
        if peek() == "0", peek(1) == "x" || peek(1) == "X", Self.isHexDigit(peek(2)) {
            i += 2
            let digitsStart = i
            while Self.isHexDigit(peek()) { i += 1 }
            let digits = String(String.UnicodeScalarView(s[digitsStart..<i]))
            guard let magnitude = UInt64(digits, radix: 16) else {
                throw source.error("integer literal out of range", at: start)
            }
            if peek() == "u" || peek() == "U" {
                i += 1
                return .uint(magnitude)
            }
            return .int(magnitude)
        }
        var isDouble = false
        while Self.isDigit(peek()) { i += 1 }
        if peek() == ".", Self.isDigit(peek(1)) {
            isDouble = true
            i += 1
            while Self.isDigit(peek()) { i += 1 }
        }
        if peek() == "e" || peek() == "E" {
            var ahead = 1
            if peek(1) == "+" || peek(1) == "-" { ahead = 2 }
            if Self.isDigit(peek(ahead)) {
                isDouble = true
                i += ahead
                while Self.isDigit(peek()) { i += 1 }
            }
        }
        let text = String(String.UnicodeScalarView(s[start..<i]))
        if isDouble {
            guard let value = Double(text), value.isFinite else {
                throw source.error("double literal out of range", at: start)
            }
            return .double(value)
        }
        guard let magnitude = UInt64(text) else { throw source.error("integer literal out of range", at: start) }
        if peek() == "u" || peek() == "U" {
            i += 1
            return .uint(magnitude)
        }
        return .int(magnitude)
    }

    // MARK: Strings

    /// Reads a quoted string starting at the quote; `raw` strings keep backslashes as is.
    private mutating func string(raw: Bool) throws(CELCompileError) -> String {
        let start = i
        let quote = s[i]
        let triple = peek(1) == quote && peek(2) == quote
        i += triple ? 3 : 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else {
                throw source.error("unterminated string literal", at: start)
            }
            if c == quote {
                if !triple {
                    i += 1
                    return String(out)
                }
                if peek(1) == quote, peek(2) == quote {
                    i += 3
                    return String(out)
                }
            }
            if !triple, c == "\n" || c == "\r" {
                throw source.error("line break in a string literal (use a triple-quoted string or \\n)", at: i)
            }
            if c == "\\", !raw {
                out.append(try escape())
                continue
            }
            out.append(c)
            i += 1
        }
    }

    /// Reads one escape sequence starting at the backslash.
    private mutating func escape() throws(CELCompileError) -> Unicode.Scalar {
        let start = i
        i += 1
        guard let c = peek() else { throw source.error("unterminated string literal", at: start) }
        i += 1
        switch c {
        case "\\": return "\\"
        case "?": return "?"
        case "\"": return "\""
        case "'": return "'"
        case "`": return "`"
        case "a": return "\u{07}"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "v": return "\u{0B}"
        case "x", "X": return try hexEscape(digits: 2, start: start)
        case "u": return try hexEscape(digits: 4, start: start)
        case "U": return try hexEscape(digits: 8, start: start)
        case "0"..."3":
            guard let d1 = peek(), ("0"..."7").contains(d1), let d2 = peek(1), ("0"..."7").contains(d2) else {
                throw source.error("invalid octal escape (use three digits, e.g. \\012)", at: start)
            }
            i += 2
            let value = (c.value - 48) * 64 + (d1.value - 48) * 8 + (d2.value - 48)
            return Unicode.Scalar(value)!
        default:
            throw source.error("invalid escape sequence \\\(String(Character(c)))", at: start)
        }
    }

    private mutating func hexEscape(digits: Int, start: Int) throws(CELCompileError) -> Unicode.Scalar {
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let c = peek(), Self.isHexDigit(c) else {
                throw source.error("invalid escape: expected \(digits) hex digits", at: start)
            }
            value = value * 16 + UInt32(Character(c).hexDigitValue!)
            i += 1
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw source.error("invalid escape: not a Unicode code point", at: start)
        }
        return scalar
    }
}
