import ChatBridgeConfig
import Foundation

/// The environment an exec sink's command starts with: sealed, not inherited.
///
/// A command gets `PATH`, `HOME`, `LANG`, `LC_*` and `TZ` from chatbridge's environment,
/// the variables its sink names in `env:` (by name, or with values), and, per delivery,
/// the `CHATBRIDGE_*` variables of delivery.md. Nothing else: the API key, webhook
/// secrets and whatever else the daemon was started with stay out of every child.
///
/// ```swift
/// let environment = ExecEnvironment.sealed(from: ProcessInfo.processInfo.environment, for: exec)
/// // ["PATH": "/usr/bin:/bin", "HOME": "/root", "SLACK_TOKEN": "…"]
/// ```
package enum ExecEnvironment {
    /// Variables every command gets from chatbridge's environment when they are set.
    package static let basics: Set<String> = ["PATH", "HOME", "LANG", "TZ"]

    /// Whether `name` is one of ``basics`` or a locale category (`LC_*`).
    package static func isBasic(_ name: String) -> Bool {
        basics.contains(name) || name.hasPrefix("LC_")
    }

    /// Only the ``basics`` of `parent`: what a command gets when its sink names nothing.
    package static func basics(of parent: [String: String]) -> [String: String] {
        parent.filter { isBasic($0.key) }
    }

    /// The environment of `configuration`'s command, built from `parent` (chatbridge's own).
    package static func sealed(from parent: [String: String], for configuration: ExecSinkConfiguration) -> [String: String] {
        var environment = basics(of: parent)
        for name in configuration.passedVariables {
            if let value = parent[name] { environment[name] = value }
        }
        for (name, value) in configuration.variables { environment[name] = value.value }
        return environment
    }
}
