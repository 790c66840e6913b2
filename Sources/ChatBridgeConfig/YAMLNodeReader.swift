import Yams

/// The node-walking half that the configuration parser and the rule file parser share:
/// it composes one YAML document, reads maps, lists and scalars out of its `Node` tree,
/// and collects every problem as a ``ConfigurationDiagnostic`` at its line and column.
///
/// The readers never throw and never stop at the first problem: each records what is
/// wrong and returns `nil` (or ``ScalarText/invalid``), and the caller carries on with a
/// default, so that the user sees every problem of a file at once.
///
/// ```swift
/// var reader = YAMLNodeReader(displayFile: "rules/a.yaml")
/// guard case .root(let root) = reader.compose(yaml),
///       let fields = reader.mapping(root, path: "the rule", allowedKeys: ["name", "when"])
/// else { return reader.diagnostics }
/// ```
package struct YAMLNodeReader {
    /// The file name diagnostics show, as the user named it.
    package let displayFile: String
    /// The variables `${NAME}` in scalars are replaced with; `nil` reads every scalar
    /// exactly as written (rule files, whose text is CEL and Mustache).
    let environment: [String: String]?
    /// Every problem found so far, in the order found.
    package private(set) var diagnostics: [ConfigurationDiagnostic] = []
    /// Whether a secret value (read with `secret: true`) may name variables that are not
    /// set: for commands that never use the secrets (``ChatBridgeConfiguration/SecretUse``).
    var secretsMayBeUnset = false
    /// The secret values left unresolved so far: `sources[0].api_key (UNIPILE_API_KEY)`.
    private(set) var unresolvedSecrets: [String] = []
    /// What each `${...}` put into a secret value (the token inside a webhook URL or a
    /// body), each once: a receiver may echo it alone, so logs hide it alone too.
    private(set) var substitutedSecrets: [String] = []

    /// What an unresolved secret holds: a valid http URL that can never be reached, so
    /// that a value which must be a URL still reads as one.
    static let unresolvedSecretPlaceholder = "http://unresolved-secret.invalid/"

    package init(displayFile: String, substituting environment: [String: String]? = nil) {
        self.displayFile = displayFile
        self.environment = environment
    }

    // MARK: - The document

    /// What ``compose(_:secondDocumentMessage:)`` found in a file.
    package enum Document {
        /// The root node, which is not null.
        case root(Node)
        /// No document, or one that is only null: the caller says what was expected.
        case empty
        /// Not YAML; already reported.
        case unreadable
    }

    /// Composes the single document of `yaml`, reporting a syntax error at its position.
    ///
    /// Every plain scalar is composed as a string (Yams' `basic` resolver): the readers
    /// decide what a value means from its text (``nullWords``, ``trueWords``, durations),
    /// never from a YAML 1.1 tag. So `on` and `"on"` are the same key, and a map that
    /// holds both is a duplicate key rather than the second silently winning. The
    /// `default` resolver would also compile seven regular expressions (ICU) at every
    /// start-up for tags nothing reads.
    ///
    /// - Parameter secondDocumentMessage: What to say when the file holds a second
    ///   document; `nil` reports libyaml's own problem text.
    package mutating func compose(_ yaml: String, secondDocumentMessage: String? = nil) -> Document {
        let root: Node?
        do {
            // No constructor maps either: nothing is converted to Swift values (`Node.any`).
            root = try Yams.compose(yaml: yaml, .basic, Constructor([:], [:], [:]))
        } catch let error as YamlError {
            record(syntaxError: error, in: yaml, secondDocumentMessage: secondDocumentMessage)
            return .unreadable
        } catch {
            report("the file could not be read as YAML", line: 1, column: 1)
            return .unreadable
        }
        guard let root, !isNull(root) else { return .empty }
        return .root(root)
    }

    /// Yams' own descriptions quote the offending line of the file, which may hold a
    /// secret: only the problem, its context and the position are kept.
    private mutating func record(syntaxError error: YamlError, in yaml: String, secondDocumentMessage: String?) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let secondDocumentMessage, problem == "but found another document" {
                message = secondDocumentMessage
            } else if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
                // `[${A}, ${B}]`: inside brackets or braces, `{` starts a map.
                let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
                let around = [context.mark.line, mark.line].compactMap { lines.indices.contains($0 - 1) ? lines[$0 - 1] : nil }
                if context.text.contains("flow"), around.contains(where: { $0.contains("${") }) {
                    message += "; inside [ ] or { }, write each ${...} in quotes: [\"${A}\", \"${B}\"]"
                }
            }
            report(message, at: mark)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? "?"
            if let second = Self.positionOfRepeatedKey(key, line: context.mark.line, column: context.mark.column, in: yaml) {
                report("duplicate key '\(key)': it is already set at line \(context.mark.line)", line: second.line, column: second.column)
            } else {
                report("duplicate key '\(key)': it is set more than once in this map", at: context.mark)
            }
        case .reader(let problem, _, _, _):
            report("the file is not readable text: \(problem)", line: 1, column: 1)
        default:
            report("the file could not be read as YAML", line: 1, column: 1)
        }
    }

    /// Where a key repeated in a block mapping is written again: the next line that has
    /// `key:` at the same column, with only indentation or `- ` before it.
    static func positionOfRepeatedKey(_ key: String, line firstLine: Int, column: Int, in yaml: String) -> (line: Int, column: Int)? {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        guard firstLine >= 1, firstLine < lines.count else { return nil }
        for lineIndex in firstLine..<lines.count {
            let scalars = Array(lines[lineIndex].unicodeScalars)
            let start = column - 1
            guard start >= 0, start < scalars.count else { continue }
            guard scalars[..<start].allSatisfy({ $0 == " " || $0 == "-" }) else { continue }
            let rest = String(String.UnicodeScalarView(scalars[start...]))
            for candidate in [key, "\"\(key)\"", "'\(key)'"] where rest.hasPrefix(candidate) {
                let after = rest.dropFirst(candidate.count).drop { $0 == " " || $0 == "\t" }
                if after.first == ":" { return (lineIndex + 1, column) }
            }
        }
        return nil
    }

    // MARK: - Maps and lists

    /// The items of a list; a problem for anything else.
    package mutating func sequence(_ node: Node, path: String) -> [Node]? {
        guard let sequence = node.sequence else {
            report("\(path) must be a list, not \(Self.describe(node))", at: node.mark)
            return nil
        }
        return Array(sequence)
    }

    /// A map with string keys; a problem for anything else. With `allowedKeys`, every
    /// other key is reported as unknown "in `path`".
    package mutating func mapping(_ node: Node, path: String, allowedKeys: [String]?) -> YAMLMapping? {
        guard let mapping = node.mapping else {
            report("\(path) must be a map of keys, not \(Self.describe(node))", at: node.mark)
            return nil
        }
        var result = YAMLMapping(mark: mapping.mark ?? node.mark)
        for (key, value) in mapping {
            guard let keyScalar = key.scalar else {
                report("\(path) has a key that is \(Self.describe(key)); keys must be plain words", at: key.mark)
                continue
            }
            // Yams keeps a key's text as written, so a bare `on` arrives as "on", not as
            // the boolean a YAML 1.1 reader would make of it.
            result.append(keyScalar.string, keyMark: keyScalar.mark, value: value)
        }
        if let allowedKeys {
            rejectUnknownKeys(result, allowedKeys: allowedKeys, in: path)
        }
        return result
    }

    /// Reports every key of `fields` that is not in `allowedKeys`, with the closest known
    /// key as a hint (a typo must not silently disable a setting).
    ///
    /// - Parameter place: What the message says the key is in ("in `place`"); `nil` for
    ///   the top of a file, where it would say nothing.
    mutating func rejectUnknownKeys(_ fields: YAMLMapping, allowedKeys: [String], in place: String?) {
        for (key, field) in fields.orderedEntries where !allowedKeys.contains(key) {
            let inPlace = place.map { " in \($0)" } ?? ""
            report("unknown key '\(key)'\(inPlace)\(Self.hint(for: key, among: allowedKeys, listedAs: "known keys"))", at: field.keyMark)
        }
    }

    // MARK: - Scalars

    /// The plain scalars YAML reads as null.
    package static let nullWords: Set<String> = ["", "~", "null", "Null", "NULL"]
    /// The plain scalars a YAML 1.1 parser reads as booleans (Yams' resolver).
    package static let trueWords: Set<String> = ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"]
    package static let falseWords: Set<String> = ["false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"]

    /// Whether `node` is written as `~`, `null` or nothing (not as a quoted string).
    package func isNull(_ node: Node) -> Bool {
        guard let scalar = node.scalar else { return false }
        return scalar.style == .plain && Self.nullWords.contains(scalar.string)
    }

    /// The scalar of `node`; a problem saying it must be `expected` for a map or a list.
    package mutating func scalar(_ node: Node, path: String, expected: String) -> Node.Scalar? {
        guard let scalar = node.scalar else {
            report("\(path) must be \(expected), not \(Self.describe(node))", at: node.mark)
            return nil
        }
        return scalar
    }

    /// The text of a scalar after `${VAR}` substitution.
    enum ScalarText {
        /// Written as `~`, `null`, nothing, or empty after substitution: use the default.
        case null
        case value(String)
        /// Not a scalar, or substitution failed; already reported.
        case invalid
    }

    /// The text of a scalar, with `${VAR}` replaced when the reader has an environment.
    ///
    /// - Parameter secret: Whether the value is a secret (an API key, a webhook URL, a
    ///   signing secret, a header value): with ``secretsMayBeUnset``, variables that are
    ///   not set leave it unresolved instead of being a problem.
    mutating func scalarText(_ node: Node, path: String, expected: String, secret: Bool = false) -> ScalarText {
        guard let scalar = scalar(node, path: path, expected: expected) else { return .invalid }
        if scalar.style == .plain, Self.nullWords.contains(scalar.string) { return .null }
        guard let environment else { return scalar.string.isEmpty ? .null : .value(scalar.string) }
        switch ConfigEnvironmentSubstitution.substitute(scalar.string, environment: environment) {
        case .success(let substitution):
            if secret {
                for value in substitution.values where !substitutedSecrets.contains(value) { substitutedSecrets.append(value) }
            }
            return substitution.text.isEmpty ? .null : .value(substitution.text)
        case .failure(let failure)
        where secret && secretsMayBeUnset && failure.problems.allSatisfy({ $0.missingSource != nil }):
            let names = failure.problems.compactMap(\.missingSource).joined(separator: ", ")
            unresolvedSecrets.append("\(path) (\(names))")
            return .value(Self.unresolvedSecretPlaceholder)
        case .failure(let failure):
            for problem in failure.problems { report("\(path): \(problem.message)", at: node.mark) }
            return .invalid
        }
    }

    /// An optional string: `nil` when null, empty or unusable.
    mutating func readString(_ node: Node, path: String, secret: Bool = false) -> String? {
        if case .value(let text) = scalarText(node, path: path, expected: "a string", secret: secret) { return text }
        return nil
    }

    /// A string that must not be null or empty; a problem otherwise.
    package mutating func readNonEmptyString(_ node: Node, path: String, expected: String, secret: Bool = false) -> String? {
        switch scalarText(node, path: path, expected: expected, secret: secret) {
        case .value(let text):
            return text
        case .null:
            report("\(path) must not be empty", at: node.mark)
            return nil
        case .invalid:
            return nil
        }
    }

    /// `text` as a boolean, from ``trueWords`` and ``falseWords``; a problem otherwise.
    ///
    /// - Parameter ignoringCase: Whether `tRuE` counts as `true` too.
    package mutating func boolean(_ text: String, path: String, at mark: Mark?, ignoringCase: Bool) -> Bool? {
        let word = ignoringCase ? text.lowercased() : text
        if Self.trueWords.contains(word) { return true }
        if Self.falseWords.contains(word) { return false }
        report("\(path) must be true or false, not '\(text)'", at: mark)
        return nil
    }

    /// `text` as a duration longer than zero (``ConfigDuration``); a problem otherwise.
    package mutating func positiveDuration(_ text: String, path: String, at mark: Mark?) -> Duration? {
        do {
            let duration = try ConfigDuration.parse(text)
            guard duration > .zero else {
                report("\(path) must be longer than 0s", at: mark)
                return nil
            }
            return duration
        } catch {
            report("\(path): \(error.message)", at: mark)
            return nil
        }
    }

    /// What a message calls the kind of `node`: "a single value", "a map", "a list".
    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar: "a single value"
        case .mapping: "a map"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    // MARK: - Suggestions

    /// " (did you mean 'x'?)" for the known word closest to `word`, else the whole list
    /// as "; `label`: a, b, c".
    package static func hint(for word: String, among known: [String], listedAs label: String) -> String {
        closestKey(to: word, among: known).map { " (did you mean '\($0)'?)" } ?? "; \(label): \(known.joined(separator: ", "))"
    }

    /// The known key within two edits of `key`, for "did you mean".
    static func closestKey(to key: String, among keys: [String]) -> String? {
        let scored = keys.map { ($0, editDistance(key.lowercased(), $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    // MARK: - Diagnostics

    /// Records `message` at `mark`, or at the start of the file without one.
    package mutating func report(_ message: String, at mark: Mark?) {
        report(message, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    package mutating func report(_ message: String, line: Int, column: Int) {
        diagnostics.append(ConfigurationDiagnostic(file: displayFile, line: line, column: column, message: message))
    }
}

/// The entries of one YAML map, by key, keeping file order and positions.
package struct YAMLMapping {
    package struct Field {
        package var keyMark: Mark?
        package var value: Node
    }

    package var mark: Mark?
    package private(set) var orderedEntries: [(key: String, field: Field)] = []
    private var indexByKey: [String: Int] = [:]

    package init(mark: Mark?) { self.mark = mark }

    package mutating func append(_ key: String, keyMark: Mark?, value: Node) {
        indexByKey[key] = orderedEntries.count
        orderedEntries.append((key, Field(keyMark: keyMark, value: value)))
    }

    package subscript(key: String) -> Field? {
        indexByKey[key].map { orderedEntries[$0].field }
    }
}
