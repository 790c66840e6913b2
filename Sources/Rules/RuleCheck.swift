import Foundation
import ChatBridgeConfig
import ChatBridgeCore
import Formats

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
    /// - Parameters:
    ///   - currentDirectory: what relative paths are relative to, and what file names in
    ///     diagnostics are shown relative to; the process's when `nil`.
    ///   - secrets: `.mayBeUnset` for `rules check --offline`.
    package static func checkAll(
        configPath: String,
        environment: [String: String],
        currentDirectory: String? = nil,
        secrets: ChatBridgeConfiguration.SecretUse = .required
    ) -> [ConfigurationDiagnostic] {
        let workingDirectory = currentDirectory ?? FileManager.default.currentDirectoryPath
        do {
            let configuration = try ChatBridgeConfiguration.loadChecked(
                path: configPath, environment: environment, currentDirectory: workingDirectory, secrets: secrets)
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

extension RuleSet {
    /// Why `account.error` would reach no one, or `nil`: there are rules (so unmatched
    /// events go nowhere) and no enabled rule's `on` selects `account.error`. A warning
    /// of `rules check`, not a problem: a bridge may mean to ignore it.
    package var accountErrorWarning: String? {
        guard !isEmpty else { return nil }
        let selecting = enabledRules.contains { rule in
            guard let on = rule.on else { return true }
            return on.contains(EventType.accountError.rawValue)
        }
        guard !selecting else { return nil }
        return "no rule can match account.error (an expired API key or a disconnected account): "
            + "with rules, events no rule matches go nowhere; add a rule with `on: [account.error, account.recovered]`"
    }
}
