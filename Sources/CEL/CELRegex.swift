import CRE2

/// A compiled regular expression for `matches`: RE2 itself, as CEL defines it.
///
/// RE2 (through the `CRE2` shim over Debian's `libre2-dev`) matches in time linear in the
/// text, whatever the pattern: `(a+)+$` against a hostile chat name of 100,000 characters
/// takes well under a millisecond, where a backtracking engine takes longer than the
/// universe is old. The text is searched as UTF-8, so `.`, classes and `\p{…}` see Unicode
/// scalars (code points), not bytes or grapheme clusters.
///
/// What RE2 refuses is refused here, with RE2's reason: backreferences (`\1`), lookaround
/// (`(?=`, `(?<!`), atomic groups, possessive quantifiers (`a*+`), repetition counts over
/// 1000 and patterns whose program has more than 50,000 steps (`CRE2_MAX_PROGRAM_SIZE`).
///
/// Linear is not yet bounded: a search costs up to the program's size per byte, and when
/// RE2's automaton runs out of states (a pattern like `([ab]{0,40}a){10}c` on adversarial
/// text) it walks every step for every byte: 13 s for 5 MB in a measurement. So a search
/// whose program size times the text's length passes ``maximumSearchSteps`` is an
/// evaluation error (the rule does not match, and says why) instead of a stall: a chat
/// name of 1 MB against a pattern of 13,000 steps, not any realistic name. A text of up
/// to ``alwaysSearchedBytes`` is always searched.
///
/// ```swift
/// let regex = try CELRegex.compile(#"\p{L}+"#).get()
/// regex.matches("Zoë")   // true
/// ```
struct CELRegex: Sendable {
    let pattern: String
    private let compiled: CompiledPattern
    /// The compiled program's instructions, for ``maximumSearchSteps``.
    let programSize: Int

    /// The most (program size × text bytes) one search may cost: about a second when every
    /// step is walked, milliseconds when RE2's automaton keeps up (most patterns).
    static let maximumSearchSteps = 1 << 28
    /// A text this long is always searched, whatever the pattern's size: a chat name or a
    /// message preview, even against a large pattern (at most about 2.5 s when every step
    /// is walked, in a pathological case).
    static let alwaysSearchedBytes = 16 << 10

    /// Compiles `pattern`; the error text says what RE2 refused and where in the pattern.
    static func compile(_ pattern: String) -> Result<CELRegex, CELEvaluationError> {
        var error = cre2_error()
        var source = pattern
        let pointer = source.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { cre2_compile($0.baseAddress, $0.count, &error) }
        }
        guard let pointer else {
            return .failure(CELEvaluationError(message: "invalid regular expression: " + explanation(of: error, in: pattern)))
        }
        return .success(CELRegex(pattern: pattern, compiled: CompiledPattern(pointer), programSize: Int(cre2_program_size(pointer))))
    }

    private init(pattern: String, compiled: CompiledPattern, programSize: Int) {
        self.pattern = pattern
        self.compiled = compiled
        self.programSize = programSize
    }

    /// Whether the pattern matches anywhere in `text` (CEL's `matches` is RE2's partial
    /// match, a search; anchor with `^…$` to match the whole string).
    ///
    /// - Throws: when the search could cost more than ``maximumSearchSteps``.
    func matches(_ text: String) throws(CELEvaluationError) -> Bool {
        let length = text.utf8.count
        let limit = max(Self.alwaysSearchedBytes, Self.maximumSearchSteps / max(1, programSize))
        guard length <= limit else {
            throw CELEvaluationError(
                message: "matches: a text of \(length) bytes is too long for this pattern (\(programSize) steps): at most \(limit) bytes")
        }
        var text = text
        return text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { cre2_partial_match(compiled.pointer, $0.baseAddress, $0.count) != 0 }
        }
    }

    /// RE2's reason in words a rule author knows, with the part of the pattern it names
    /// (quoted and cut short: the pattern may be chat text when it is not a literal) and
    /// that part's position in characters, from 1.
    private static func explanation(of error: cre2_error, in pattern: String) -> String {
        let reason = withUnsafeBytes(of: error.reason) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let utf8 = pattern.utf8
        guard error.argument_offset >= 0,
              let start = utf8.index(utf8.startIndex, offsetBy: error.argument_offset, limitedBy: utf8.endIndex),
              let end = utf8.index(start, offsetBy: error.argument_length, limitedBy: utf8.endIndex)
        else { return reason }
        let argument = String(pattern[start..<end])
        let rest = String(pattern[start...])
        let position = pattern.unicodeScalars.distance(from: pattern.unicodeScalars.startIndex, to: start) + 1
        let text = unsupportedConstruct(code: Int(error.code), argument: argument, rest: rest)
            ?? "\(reason): \(CELStrings.excerpt(argument))"
        return "\(text) (at character \(position) of the pattern)"
    }
}

/// RE2's error codes (`RE2::ErrorCode`) that name a construct of other regex dialects.
private enum RE2ErrorCode {
    static let badEscape = 2, repeatOperator = 11, badPerlOperator = 12, badNamedCapture = 14
}

/// What a pattern written for another dialect (PCRE, ICU, Java) asked for that RE2 does
/// not have, in words, or `nil` when the pattern is simply malformed. `argument` is the
/// part RE2 named, `rest` the pattern from there on.
private func unsupportedConstruct(code: Int, argument: String, rest: String) -> String? {
    let notSupported = " is not supported (RE2 syntax)"
    switch code {
    case RE2ErrorCode.badEscape:
        if argument.count == 2, ("1"..."9").contains(argument.last!) { return "a backreference" + notSupported }
        if ["\\k", "\\Z", "\\G", "\\X", "\\R"].contains(argument) { return argument + notSupported }
    case RE2ErrorCode.badPerlOperator, RE2ErrorCode.badNamedCapture:
        if ["(?=", "(?!", "(?<=", "(?<!"].contains(where: rest.hasPrefix) { return "lookaround" + notSupported }
        if rest.hasPrefix("(?>") { return "an atomic group" + notSupported }
        if rest.hasPrefix("(?<") { return "a named group is written (?P<name>…) in RE2" }
    case RE2ErrorCode.repeatOperator:
        if argument.count >= 2, argument.hasSuffix("+"), ["*", "+", "?", "}"].contains(argument.dropLast().last!) {
            return "a possessive quantifier" + notSupported
        }
    default:
        break
    }
    return nil
}

/// Owns one RE2 object. RE2 objects are safe to match from many threads at once (RE2's
/// documented guarantee); this one is never changed after it is compiled and is freed
/// exactly once, when the last ``CELRegex`` holding it goes.
private final class CompiledPattern: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { cre2_free(pointer) }
}
