import Foundation

/// A compiled regular expression for `matches`, in RE2 syntax.
///
/// Matching runs on ICU (`NSRegularExpression`), whose syntax is a superset of RE2's.
/// Patterns using what RE2 lacks — backreferences (`\1`), lookaround (`(?=`, `(?<!`),
/// atomic groups and possessive quantifiers — are refused, so a pattern means the same
/// here as in other CEL implementations and the worst backtracking cases are kept out.
/// RE2's `(?P<name>…)` groups are accepted.
struct CELRegex: Sendable {
    let pattern: String
    private let expression: NSRegularExpression

    /// Compiles `pattern`; the error text says what is wrong with it.
    static func compile(_ pattern: String) -> Result<CELRegex, CELEvaluationError> {
        let translated: String
        switch translate(pattern) {
        // ICU refuses an empty pattern, which RE2 (and CEL) accept as matching everywhere.
        case .success(let text): translated = text.isEmpty ? "(?:)" : text
        case .failure(let error): return .failure(error)
        }
        do {
            let expression = try NSRegularExpression(pattern: translated, options: [])
            return .success(CELRegex(pattern: pattern, expression: expression))
        } catch {
            return .failure(CELEvaluationError(message: "invalid regular expression"))
        }
    }

    private init(pattern: String, expression: NSRegularExpression) {
        self.pattern = pattern
        self.expression = expression
    }

    /// Whether the pattern matches anywhere in `text` (CEL's `matches` is a search, not a
    /// whole-string match; anchor with `^…$` for that).
    func matches(_ text: String) -> Bool {
        expression.firstMatch(in: text, options: [], range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Checks for constructs RE2 does not have and rewrites `(?P<` to ICU's `(?<`.
    private static func translate(_ pattern: String) -> Result<String, CELEvaluationError> {
        let s = Array(pattern.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        var inClass = false
        func refuse(_ what: String) -> Result<String, CELEvaluationError> {
            .failure(CELEvaluationError(message: "invalid regular expression: \(what) is not supported (RE2 syntax)"))
        }
        while i < s.count {
            let c = s[i]
            if c == "\\" {
                guard i + 1 < s.count else { return .failure(CELEvaluationError(message: "invalid regular expression: trailing backslash")) }
                let next = s[i + 1]
                if !inClass, ("1"..."9").contains(next) { return refuse("a backreference") }
                if !inClass, next == "k" || next == "Z" || next == "G" || next == "X" || next == "R" {
                    return refuse("\\\(Character(next))")
                }
                out.append(c)
                out.append(next)
                i += 2
                continue
            }
            if inClass {
                if c == "]" { inClass = false }
                out.append(c)
                i += 1
                continue
            }
            switch c {
            case "[":
                inClass = true
                out.append(c)
                i += 1
                // A ']' right after '[' or '[^' is a literal.
                if i < s.count, s[i] == "^" { out.append(s[i]); i += 1 }
                if i < s.count, s[i] == "]" { out.append(s[i]); i += 1 }
                continue
            case "(" where i + 1 < s.count && s[i + 1] == "?":
                let rest = s[(i + 2)...].prefix(3).map { Character($0) }
                if rest.starts(with: ["="]) || rest.starts(with: ["!"]) || rest.starts(with: ["<", "="])
                    || rest.starts(with: ["<", "!"])
                {
                    return refuse("lookaround")
                }
                if rest.starts(with: [">"]) { return refuse("an atomic group") }
                if rest.starts(with: ["P", "<"]) {
                    out.append(contentsOf: "(?<".unicodeScalars)
                    i += 4
                    continue
                }
            case "*", "+", "?", "}":
                if i + 1 < s.count, s[i + 1] == "+" { return refuse("a possessive quantifier") }
            default:
                break
            }
            out.append(c)
            i += 1
        }
        return .success(String(out))
    }
}
