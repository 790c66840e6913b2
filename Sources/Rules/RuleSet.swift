import Foundation
import ChatBridgeConfig

/// Every rule of the rules folder (or file), validated and compiled: what the pipeline
/// matches events against.
///
/// ```swift
/// let configuration = try ChatBridgeConfiguration.load(path: path, environment: environment)
/// let rules = try RuleSet.load(path: configuration.rulesPath, configuration: configuration)
/// let router = rules.router(logger: logger)       // for SQLiteStore.applyCompletePoll
/// for evaluation in rules.evaluate(event, now: Date()) { print(evaluation.rule, evaluation.outcome) }
/// ```
///
/// Loading reads `*.yaml` and `*.yml` files of the folder in name order (not its
/// subfolders, nor names starting with `.`), or the one file `path` names. It reports
/// every problem of every file at once, each as `FILE:LINE:COLUMN: message`: YAML
/// errors, unknown keys, unknown kinds in `on`, unknown sinks in `send`, CEL syntax
/// errors, unknown variables and functions (at their column inside the expression),
/// bad durations, templates and `quiet_hours`, and names used twice.
package struct RuleSet: Sendable {
    /// The rules, in file-name order, then in their order within a file. Disabled rules
    /// are included (they match nothing).
    package var rules: [Rule]

    /// No rule at all: then every event goes to `stdout` (config.md).
    package var isEmpty: Bool { rules.isEmpty }

    /// The rules that match events.
    package var enabledRules: [Rule] { rules.filter(\.isEnabled) }

    package init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// The rule named `name`, if any.
    package func rule(named name: String) -> Rule? {
        rules.first { $0.name == name }
    }

    /// Loads the rules at `path` (a folder or one file) for `configuration`: `send` may
    /// name its sinks. When `path` does not exist, that is no rules if it is the
    /// configuration's default rules folder (`rules:` not written), and a problem if the
    /// user named it.
    ///
    /// - Parameters:
    ///   - path: Usually `configuration.rulesPath` (absolute).
    ///   - currentDirectory: Diagnostics name files relative to it when they are inside
    ///     it, else by their absolute path; the process's current directory when `nil`.
    /// - Throws: ``ConfigurationError`` with every problem found.
    package static func load(
        path: String,
        configuration: ChatBridgeConfiguration,
        currentDirectory: String? = nil
    ) throws(ConfigurationError) -> RuleSet {
        let mayBeAbsent = path == configuration.rulesPath && !configuration.rulesPathIsExplicit
        let (ruleSet, diagnostics) = loadCollectingProblems(
            path: path,
            sinkNames: Set(configuration.sinkNames),
            mayBeAbsent: mayBeAbsent,
            currentDirectory: currentDirectory
        )
        guard diagnostics.isEmpty else { throw ConfigurationError(diagnostics: diagnostics) }
        return ruleSet
    }

    /// Parses the text of one rule file, as ``load(path:configuration:currentDirectory:)``
    /// does with each file; for tests and for checking text before writing it.
    ///
    /// - Parameters:
    ///   - file: The name diagnostics show; a single rule without `name` takes this
    ///     name's last component without its extension.
    ///   - sinkNames: What `send` may name; `stdout` is always allowed.
    package static func parse(yaml: String, file: String, sinkNames: Set<String> = []) throws(ConfigurationError) -> RuleSet {
        var parser = RuleFileParser(
            yaml: yaml, displayFile: file, defaultName: defaultRuleName(forFile: file),
            sinkNames: sinkNames.union([SinkConfiguration.standardOutputName]))
        let parsed = parser.parse()
        var diagnostics = parser.diagnostics
        diagnostics += duplicateNameProblems([(file, parser.names)])
        guard diagnostics.isEmpty else { throw ConfigurationError(diagnostics: sorted(diagnostics)) }
        return RuleSet(rules: parsed.map(\.rule))
    }

    /// Loads what can be loaded and returns it with every problem found (the rules with
    /// a problem are left out). `sinkNames` `nil` accepts any sink name.
    static func loadCollectingProblems(
        path: String,
        sinkNames: Set<String>?,
        mayBeAbsent: Bool,
        currentDirectory: String?
    ) -> (RuleSet, [ConfigurationDiagnostic]) {
        let workingDirectory = currentDirectory ?? FileManager.default.currentDirectoryPath
        let absolutePath = ChatBridgeConfiguration.resolve(path: path, against: workingDirectory)
        let shownPath = displayPath(absolutePath, currentDirectory: workingDirectory)

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolutePath, isDirectory: &isDirectory) else {
            if mayBeAbsent { return (RuleSet(), []) }
            return (RuleSet(), [ConfigurationDiagnostic(
                file: shownPath, line: 0, column: 0,
                message: "no rules folder or rule file here (create it, or change `rules:` in the configuration)")])
        }

        let files: [String]
        if isDirectory.boolValue {
            do {
                files = try FileManager.default.contentsOfDirectory(atPath: absolutePath)
                    .filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }
                    .sorted()
                    .map { absolutePath + "/" + $0 }
                    .filter { file in
                        var isFolder: ObjCBool = false
                        return FileManager.default.fileExists(atPath: file, isDirectory: &isFolder) && !isFolder.boolValue
                    }
            } catch {
                return (RuleSet(), [ConfigurationDiagnostic(
                    file: shownPath, line: 0, column: 0, message: "the rules folder cannot be read (check its permissions)")])
            }
        } else {
            files = [absolutePath]
        }

        var diagnostics: [ConfigurationDiagnostic] = []
        var parsedFiles: [(file: String, rules: [ParsedRule])] = []
        var namedFiles: [(file: String, names: [(name: String, position: SourcePosition)])] = []
        for file in files {
            let shownFile = displayPath(file, currentDirectory: workingDirectory)
            guard let data = FileManager.default.contents(atPath: file) else {
                diagnostics.append(ConfigurationDiagnostic(
                    file: shownFile, line: 0, column: 0, message: "the rule file cannot be read (check its permissions)"))
                continue
            }
            guard let yaml = String(data: data, encoding: .utf8) else {
                diagnostics.append(ConfigurationDiagnostic(file: shownFile, line: 0, column: 0, message: "the rule file is not UTF-8 text"))
                continue
            }
            var parser = RuleFileParser(
                yaml: yaml, displayFile: shownFile, defaultName: defaultRuleName(forFile: file), sinkNames: sinkNames)
            let parsed = parser.parse()
            diagnostics += parser.diagnostics
            parsedFiles.append((shownFile, parsed))
            namedFiles.append((shownFile, parser.names))
        }
        diagnostics += duplicateNameProblems(namedFiles)

        // A name used twice leaves both rules out: which one the user meant is unknown.
        var counts: [String: Int] = [:]
        for (_, parsed) in parsedFiles { for rule in parsed { counts[rule.rule.name, default: 0] += 1 } }
        let rules = parsedFiles.flatMap(\.rules).map(\.rule).filter { counts[$0.name] == 1 }
        return (RuleSet(rules: rules), sorted(diagnostics))
    }

    /// The name a single-rule file gives its rule: its file name without extension.
    static func defaultRuleName(forFile file: String) -> String {
        let name = file.split(separator: "/").last.map(String.init) ?? file
        for suffix in [".yaml", ".yml"] where name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }

    /// One problem per rule whose name an earlier rule already has, at the later name.
    /// Checks the names of every rule read, those with other problems too: `rules check`
    /// reports every problem at once.
    private static func duplicateNameProblems(
        _ files: [(file: String, names: [(name: String, position: SourcePosition)])]
    ) -> [ConfigurationDiagnostic] {
        var first: [String: (file: String, line: Int)] = [:]
        var problems: [ConfigurationDiagnostic] = []
        for (file, names) in files {
            for (name, position) in names {
                if let earlier = first[name] {
                    let place = earlier.file == file ? "line \(earlier.line)" : "\(earlier.file):\(earlier.line)"
                    problems.append(ConfigurationDiagnostic(
                        file: file, line: position.line, column: position.column,
                        message: "rule name '\(name)' is already used at \(place): rule names must be unique"))
                } else {
                    first[name] = (file, position.line)
                }
            }
        }
        return problems
    }

    static func sorted(_ diagnostics: [ConfigurationDiagnostic]) -> [ConfigurationDiagnostic] {
        diagnostics.enumerated().sorted { lhs, rhs in
            (lhs.element.file, lhs.element.line, lhs.element.column, lhs.offset)
                < (rhs.element.file, rhs.element.line, rhs.element.column, rhs.offset)
        }.map(\.element)
    }

    /// `path` relative to `currentDirectory` when inside it, else `path` itself.
    static func displayPath(_ path: String, currentDirectory: String) -> String {
        let base = currentDirectory.hasSuffix("/") ? currentDirectory : currentDirectory + "/"
        if path.hasPrefix(base), path.count > base.count { return String(path.dropFirst(base.count)) }
        return path
    }
}
