import ArgumentParser
import Foundation
import ChatBridgeConfig

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented starter config and an example rule.",
        discussion: """
            Writes DIR/config/chatbridge.yaml (API key from ${UNIPILE_API_KEY}), \
            DIR/rules/linkedin-inmail-unread.yaml, DIR/rules/account-problems.yaml \
            (account.error and account.recovered: once any rule exists, events no rule \
            matches go nowhere) and, for editors (YAML language server: completion, \
            descriptions, defaults), their JSON Schemas in DIR/schema/, which the first line \
            of each file names; refuses to overwrite existing files.
            Example:
              chatbridge init my-bridge && cd my-bridge
              UNIPILE_API_KEY=... chatbridge run
            """)

    @Argument(help: "The folder to write into (default: the current folder).") var directory: String = "."

    func run() throws {
        let files = [
            ("config/chatbridge.yaml", ChatBridgeConfiguration.starterConfigYAML),
            ("rules/linkedin-inmail-unread.yaml", ChatBridgeConfiguration.starterRuleYAML),
            ("rules/account-problems.yaml", ChatBridgeConfiguration.starterAccountRuleYAML),
            (ConfigurationSchema.configRelativePath, ConfigurationSchema.configJSON),
            (ConfigurationSchema.ruleRelativePath, ConfigurationSchema.ruleJSON),
        ]
        let manager = FileManager.default
        let existing = files.map { (directory as NSString).appendingPathComponent($0.0) }.filter {
            manager.fileExists(atPath: $0)
        }
        guard existing.isEmpty else {
            printError("not overwriting \(existing.joined(separator: ", ")): remove \(existing.count == 1 ? "it" : "them") first or choose another folder")
            throw ExitCode(1)
        }
        for (relative, text) in files {
            let path = (directory as NSString).appendingPathComponent(relative)
            do {
                try manager.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .withoutOverwriting)
            } catch {
                printError("cannot write \(path): \(error.localizedDescription)")
                throw ExitCode(1)
            }
            printError("wrote \(path)")
        }
        printError("next: set UNIPILE_API_KEY and the url in config/chatbridge.yaml, then `chatbridge run`")
    }
}
