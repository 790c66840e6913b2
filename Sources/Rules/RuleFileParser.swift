import CEL
import Foundation
import Yams
import ChatBridgeConfig
import Formats

/// A rule as read from its file, with the place of its name for checks across files.
struct ParsedRule: Sendable {
    var rule: Rule
    /// Where the name is written; the rule's map when the name comes from the file name.
    var namePosition: SourcePosition
}

/// Reads one rule file: one rule as a map, or a list of rules under `rules:`.
///
/// Like ``ConfigurationParser`` it walks the YAML node tree with a ``YAMLNodeReader``
/// instead of decoding, so that every problem carries its line and column, unknown keys
/// are reported, and reading goes on after a problem: the user sees every problem of the
/// file at once. A rule with a problem is left out of ``parse()``'s result; its
/// diagnostics say why. Scalars are read as written: no `${VAR}` substitution.
struct RuleFileParser {
    /// The name a single-rule file gives its rule when it has no `name`: the file's
    /// name without extension.
    let defaultName: String
    /// The sinks `send` may name; `nil` accepts any name (the configuration could not be
    /// read, so its sinks are unknown).
    let sinkNames: Set<String>?
    let yaml: String
    private let lines: [[Unicode.Scalar]]
    private var reader: YAMLNodeReader
    /// The name of every rule read so far with where it is written, whether or not the
    /// rule had other problems (for ``RuleSet``'s check of duplicate names).
    private(set) var names: [(name: String, position: SourcePosition)] = []

    /// The file name diagnostics show.
    package var displayFile: String { reader.displayFile }
    /// Every problem found, in the order found.
    package var diagnostics: [ConfigurationDiagnostic] { reader.diagnostics }

    static let ruleKeys = [
        "name", "description", "on", "when", "send", "throttle", "template", "enabled", "quiet_hours", "digest",
    ]
    static let quietHoursKeys = ["from", "to", "timezone"]

    init(yaml: String, displayFile: String, defaultName: String, sinkNames: Set<String>?) {
        self.yaml = yaml
        self.reader = YAMLNodeReader(displayFile: displayFile)
        self.defaultName = defaultName
        self.sinkNames = sinkNames
        self.lines = YAMLScalarPositions.lines(of: yaml)
    }

    /// The rules of the file that have no problem; ``diagnostics`` holds every problem.
    mutating func parse() -> [ParsedRule] {
        let root: Node
        switch reader.compose(yaml) {
        case .root(let node):
            root = node
        case .empty:
            reader.report("the file holds no rule: write one rule (name, on, when, send) or a list of them under `rules:`", line: 1, column: 1)
            return []
        case .unreadable:
            return []
        }
        guard let top = reader.mapping(root, path: "the rule file", allowedKeys: nil) else { return [] }

        if let list = top["rules"] {
            // The list form: `rules:` and nothing else.
            for (key, field) in top.orderedEntries where key != "rules" {
                reader.report("unknown key '\(key)' next to `rules:`: a file holds one rule, or a list of rules under `rules:`", at: field.keyMark)
            }
            if reader.isNull(list.value) { return [] }
            guard let items = reader.sequence(list.value, path: "rules") else { return [] }
            var parsed: [ParsedRule] = []
            for (index, item) in items.enumerated() {
                if let rule = readRule(item, path: "rules[\(index)]", defaultName: nil) { parsed.append(rule) }
            }
            return parsed
        }
        return readRule(root, path: "the rule", defaultName: defaultName).map { [$0] } ?? []
    }

    // MARK: - One rule

    private mutating func readRule(_ node: Node, path: String, defaultName: String?) -> ParsedRule? {
        let problemsBefore = diagnostics.count
        guard let fields = reader.mapping(node, path: path, allowedKeys: Self.ruleKeys) else { return nil }
        let rulePosition = position(of: fields.mark ?? node.mark)

        var name: String?
        var namePosition = rulePosition
        if let field = fields["name"], !reader.isNull(field.value) {
            name = readString(field.value, path: "\(path).name")
            namePosition = position(of: field.value.mark)
            if let written = name, !Rule.isValidName(written) {
                reader.report("rule name '\(written)' may only hold letters, digits, _, . and - (at most 100)", at: field.value.mark)
                name = nil
            }
        } else if let defaultName {
            if Rule.isValidName(defaultName) {
                name = defaultName
            } else {
                reader.report("the rule takes its name from the file name, '\(defaultName)', which may only hold letters, digits, _, . and -: rename the file or add `name:`", at: fields.mark)
            }
        } else {
            reader.report("\(path).name is required in a list of rules", at: fields.mark)
        }
        let label = name.map { "rule '\($0)'" } ?? path
        // Every rule's name, a broken rule's too: a duplicate is a problem of its own.
        if let name { names.append((name, namePosition)) }

        let description = fields["description"].flatMap { reader.isNull($0.value) ? nil : readString($0.value, path: "\(label): description") }
        let on = fields["on"].flatMap { readTriggers($0.value, label: label) }
        let condition = fields["when"].map { readCondition($0.value, label: label) } ?? .constant(true)
        let sinks = fields["send"].flatMap { reader.isNull($0.value) ? nil : readSinks($0.value, label: label) }
        let throttle = fields["throttle"].flatMap { readDuration($0.value, label: label, key: "throttle") }
        let template = fields["template"].flatMap { readTemplate($0.value, label: label) }
        let enabled = fields["enabled"].flatMap { readBool($0.value, label: label, key: "enabled") }
        let quietHours = fields["quiet_hours"].flatMap { readQuietHours($0.value, label: label) }
        let digest = fields["digest"].flatMap { readDuration($0.value, label: label, key: "digest") }

        guard diagnostics.count == problemsBefore, let name, let condition else { return nil }
        let rule = Rule(
            name: name,
            description: description,
            on: on,
            condition: condition,
            sinks: sinks ?? [SinkConfiguration.standardOutputName],
            throttle: throttle,
            template: template,
            isEnabled: enabled ?? true,
            quietHours: quietHours,
            digest: digest,
            file: displayFile,
            line: rulePosition.line,
            column: rulePosition.column
        )
        return ParsedRule(rule: rule, namePosition: namePosition)
    }

    /// `on`: a list, or a single string, of event kinds and types.
    private mutating func readTriggers(_ node: Node, label: String) -> Set<String>? {
        if reader.isNull(node) { return nil }
        guard let items = listOrSingle(node, ifEmpty: "\(label): `on` is empty; leave it out to consider every event") else {
            return nil
        }
        var triggers: Set<String> = []
        for item in items {
            guard let word = readString(item, path: "\(label): on") else { continue }
            guard Rule.triggerNames.contains(word) else {
                let known = Rule.triggerNames.sorted()
                let hint = YAMLNodeReader.hint(for: word, among: known, listedAs: "known")
                reader.report("\(label): unknown event kind or type '\(word)' in `on`\(hint)", at: item.mark)
                continue
            }
            triggers.insert(word)
        }
        return triggers
    }

    /// `when`: a CEL expression, or a YAML boolean that counts as that literal.
    private mutating func readCondition(_ node: Node, label: String) -> RuleCondition? {
        guard let scalar = reader.scalar(node, path: "\(label): `when`", expected: "a CEL expression (a string) or true/false") else {
            return nil
        }
        if scalar.style == .plain {
            if YAMLNodeReader.nullWords.contains(scalar.string) { return .constant(true) }
            if YAMLNodeReader.trueWords.contains(scalar.string) { return .constant(true) }
            if YAMLNodeReader.falseWords.contains(scalar.string) { return .constant(false) }
        }
        do throws(CELCompileError) {
            return try RuleCondition.compile(scalar.string)
        } catch {
            let place = valuePosition(scalar, line: error.line, column: error.column)
            reader.report("\(label): `when`: \(error.message)", line: place.line, column: place.column)
            return nil
        }
    }

    /// `send`: a list, or a single string, of configured sink names.
    private mutating func readSinks(_ node: Node, label: String) -> [String]? {
        guard let items = listOrSingle(node, ifEmpty: "\(label): `send` is empty; name at least one sink (or set `enabled: false`)") else {
            return nil
        }
        var sinks: [String] = []
        for item in items {
            guard let sink = readString(item, path: "\(label): send") else { continue }
            if let sinkNames, !sinkNames.contains(sink) {
                let known = sinkNames.sorted()
                let hint = YAMLNodeReader.hint(for: sink, among: known, listedAs: "configured sinks")
                reader.report("\(label): unknown sink '\(sink)' in `send`\(hint)", at: item.mark)
                continue
            }
            if sinks.contains(sink) {
                reader.report("\(label): sink '\(sink)' is listed twice in `send`", at: item.mark)
                continue
            }
            sinks.append(sink)
        }
        return sinks
    }

    private mutating func readTemplate(_ node: Node, label: String) -> DeliveryTemplate? {
        if reader.isNull(node) { return nil }
        guard let scalar = reader.scalar(node, path: "\(label): `template`", expected: "a string") else { return nil }
        do throws(TemplateError) {
            return try DeliveryTemplate(scalar.string)
        } catch {
            let place = valuePosition(scalar, line: error.line ?? 1, column: error.column ?? 1)
            reader.report("\(label): `template`: \(error.message)", line: place.line, column: place.column)
            return nil
        }
    }

    private mutating func readDuration(_ node: Node, label: String, key: String) -> Duration? {
        if reader.isNull(node) { return nil }
        guard let text = readString(node, path: "\(label): \(key)") else { return nil }
        return reader.positiveDuration(text, path: "\(label): `\(key)`", at: node.mark)
    }

    private mutating func readBool(_ node: Node, label: String, key: String) -> Bool? {
        if reader.isNull(node) { return nil }
        let path = "\(label): `\(key)`"
        guard let scalar = reader.scalar(node, path: path, expected: "true or false") else { return nil }
        return reader.boolean(scalar.string, path: path, at: node.mark, ignoringCase: false)
    }

    private mutating func readQuietHours(_ node: Node, label: String) -> QuietHours? {
        if reader.isNull(node) { return nil }
        guard let fields = reader.mapping(node, path: "quiet_hours of \(label)", allowedKeys: Self.quietHoursKeys) else { return nil }
        func readTime(_ key: String) -> Int? {
            guard let field = fields[key], !reader.isNull(field.value) else {
                reader.report("\(label): quiet_hours.\(key) is required, e.g. \(key): \"\(key == "from" ? "22:00" : "07:00")\"", at: fields.mark)
                return nil
            }
            guard let text = readString(field.value, path: "\(label): quiet_hours.\(key)") else { return nil }
            guard let minute = QuietHours.parseTime(text) else {
                reader.report("\(label): quiet_hours.\(key) must be a time of day HH:MM from 00:00 to 23:59, not '\(text)'", at: field.value.mark)
                return nil
            }
            return minute
        }
        let from = readTime("from")
        let to = readTime("to")
        var timeZone: TimeZone? = TimeZone(identifier: "UTC")
        if let field = fields["timezone"], !reader.isNull(field.value) {
            timeZone = nil
            if let name = readString(field.value, path: "\(label): quiet_hours.timezone") {
                if let zone = Self.timeZone(named: name) {
                    timeZone = zone
                } else {
                    reader.report("\(label): quiet_hours.timezone '\(name)' is not a time zone of the tz database (e.g. Europe/Paris, America/New_York, UTC)", at: field.value.mark)
                }
            }
        }
        guard let from, let to, let timeZone else { return nil }
        guard from != to else {
            reader.report("\(label): quiet_hours.from and quiet_hours.to are the same time: the window would be empty", at: fields["to"]?.value.mark)
            return nil
        }
        return QuietHours(fromMinute: from, toMinute: to, timeZone: timeZone)
    }

    /// A tz database zone by its exact name. `TimeZone(identifier:)` alone also takes
    /// abbreviations and ignores case on some platforms; a rule must name a real zone.
    static func timeZone(named name: String) -> TimeZone? {
        guard let zone = TimeZone(identifier: name) else { return nil }
        if zone.identifier == name || TimeZone.knownTimeZoneIdentifiers.contains(name) { return zone }
        if ["UTC", "GMT"].contains(name) { return zone }
        return nil
    }

    // MARK: - Nodes

    /// The items of a list, or `node` alone when it is not a list; `nil`, with the problem
    /// `emptyMessage`, for an empty list.
    private mutating func listOrSingle(_ node: Node, ifEmpty emptyMessage: String) -> [Node]? {
        guard let sequence = node.sequence else { return [node] }
        guard !sequence.isEmpty else {
            reader.report(emptyMessage, at: node.mark)
            return nil
        }
        return Array(sequence)
    }

    /// The text of a scalar, as written; a problem for anything else or for an empty value.
    private mutating func readString(_ node: Node, path: String) -> String? {
        reader.readNonEmptyString(node, path: path, expected: "a single value")
    }

    // MARK: - Positions

    private func position(of mark: Mark?) -> SourcePosition {
        SourcePosition(line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    /// The file position of `line`:`column` (1-based) inside `scalar`'s value. Falls
    /// back to the scalar's start, moved down `line - 1` lines for `|` blocks, when the
    /// value cannot be mapped character by character.
    private func valuePosition(_ scalar: Node.Scalar, line: Int, column: Int) -> SourcePosition {
        if let map = YAMLScalarPositions(scalar: scalar, lines: lines) {
            return map.position(ofValueLine: line, column: column, in: scalar.string)
        }
        let start = position(of: scalar.mark)
        switch scalar.style {
        case .literal, .folded: return SourcePosition(line: start.line + max(line, 1), column: 1)
        default: return start
        }
    }
}
