/// `${NAME}` substitution in configuration values.
///
/// - `${NAME}` is the value of the environment variable `NAME`; when it is not set,
///   that is a problem naming `NAME` (never a value: these are often secrets).
/// - `${NAME:-default}` is `default` when `NAME` is unset or empty, as in a POSIX shell.
/// - `$$` is a literal `$`; any other `$` is kept as written, so a password such as
///   `pa$word` needs no escaping.
///
/// Substitution is one pass: a variable's value is never scanned for `${` again, so a
/// value cannot smuggle in a reference to another variable.
package enum ConfigEnvironmentSubstitution {
    /// What went wrong in one `${...}`. The message names the variable, never a value.
    struct Problem: Sendable, Hashable {
        var message: String
        /// The variable, when the problem is only that it is not set.
        var unsetVariable: String? = nil
    }

    /// Every problem of one text.
    struct Failure: Error, Sendable, Hashable {
        var problems: [Problem]
    }

    /// Replaces every `${...}` in `text`, or returns every problem found in it.
    static func substitute(_ text: String, environment: [String: String]) -> Result<String, Failure> {
        guard text.contains("$") else { return .success(text) }
        var output = ""
        var problems: [Problem] = []
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "$", index + 1 < scalars.count else {
                output.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            let next = scalars[index + 1]
            if next == "$" {
                output.append("$")
                index += 2
                continue
            }
            guard next == "{" else {
                output.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            guard let close = scalars[(index + 2)...].firstIndex(of: "}") else {
                problems.append(Problem(message: "unterminated '${': write ${NAME} or ${NAME:-default} (and $$ for a literal $)"))
                break
            }
            let body = String(String.UnicodeScalarView(scalars[(index + 2)..<close]))
            index = close + 1
            let name: String
            let fallback: String?
            if let separator = body.firstRange(of: ":-") {
                name = String(body[..<separator.lowerBound])
                fallback = String(body[separator.upperBound...])
            } else {
                name = body
                fallback = nil
            }
            guard isVariableName(name) else {
                // The text inside is not echoed: it may be a secret pasted in the wrong place.
                problems.append(Problem(message: "a '${...}' here is not a variable reference: write ${NAME} or ${NAME:-default}, NAME made of letters, digits and _ (and $$ for a literal $)"))
                continue
            }
            if let value = environment[name], !(value.isEmpty && fallback != nil) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                problems.append(Problem(
                    message: "environment variable \(name) is not set (write ${\(name):-default} to give a default)",
                    unsetVariable: name))
            }
        }
        return problems.isEmpty ? .success(output) : .failure(Failure(problems: problems))
    }

    /// The names of the variables `text` refers to with `${NAME}` or `${NAME:-default}`,
    /// in order, each once: what a file takes from the environment, which `chatbridge
    /// sinks test` treats as secret.
    package static func referencedNames(in text: String) -> [String] {
        var names: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            rest = rest[start.upperBound...]
            let body = rest.prefix { $0 != "}" && $0 != ":" && !$0.isNewline }
            let name = String(body)
            if isVariableName(name), !names.contains(name) { names.append(name) }
        }
        return names
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, the names a shell can export.
    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        func isLetter(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" }
        return isLetter(first) && name.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
    }
}
