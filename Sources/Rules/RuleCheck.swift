import Foundation
import ChatBridgeConfig

extension RuleSet {
    /// What `chatbridge rules check` reports: every problem of the configuration file and
    /// of the rule files together, in that order. Empty means all is well (exit 0).
    ///
    /// When the configuration itself has problems, its sinks and `rules:` are unknown; the
    /// rules are then still checked, at the default place (`rules/` next to the
    /// configuration's base folder, absent allowed), with any sink name accepted, so
    /// that the user sees the rule problems in the same run. When the configuration file
    /// cannot be read at all, only that is reported.
    ///
    /// ```swift
    /// let problems = RuleSet.checkAll(configPath: path, environment: ProcessInfo.processInfo.environment)
    /// for problem in problems { print(problem) }     // FILE:LINE:COLUMN: message
    /// ```
    ///
    /// - Parameter currentDirectory: what relative paths are relative to, and what file
    ///   names in diagnostics are shown relative to; the process's when `nil`.
    package static func checkAll(
        configPath: String,
        environment: [String: String],
        currentDirectory: String? = nil
    ) -> [ConfigurationDiagnostic] {
        let workingDirectory = currentDirectory ?? FileManager.default.currentDirectoryPath
        do {
            let configuration = try ChatBridgeConfiguration.load(
                path: configPath, environment: environment, currentDirectory: workingDirectory)
            return loadCollectingProblems(
                path: configuration.rulesPath,
                sinkNames: Set(configuration.sinkNames),
                mayBeAbsent: !configuration.rulesPathIsExplicit,
                currentDirectory: workingDirectory
            ).1
        } catch {
            let configurationProblems = error.diagnostics
            // A file that cannot be read says nothing about where its rules are.
            if configurationProblems.contains(where: { $0.line == 0 }) { return configurationProblems }
            let absoluteConfig = ChatBridgeConfiguration.resolve(path: configPath, against: workingDirectory, home: environment["HOME"])
            let defaultRules = ChatBridgeConfiguration.baseDirectory(forConfigurationFile: absoluteConfig) + "/rules"
            let ruleProblems = loadCollectingProblems(
                path: defaultRules, sinkNames: nil, mayBeAbsent: true, currentDirectory: workingDirectory
            ).1
            return configurationProblems + ruleProblems
        }
    }
}
