/// One problem found in a configuration file, with the place it was found.
///
/// Its description is the one-line form editors and terminals understand:
///
/// ```
/// config/chatbridge.yaml:7:5: unknown key 'acount_type' in sources[0]
/// ```
///
/// Messages name keys and positions, never the value of a secret (API keys, webhook
/// URLs, signing secrets, header values): a broken `api_key` is reported as
/// "sources[0].api_key must not be empty", not by echoing what was written.
package struct ConfigurationDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The file the problem is in, as the user named it.
    package var file: String
    /// 1-based line; `0` when the problem concerns the file as a whole (it cannot be read).
    package var line: Int
    /// 1-based column, counted in Unicode scalars; `0` together with `line == 0`.
    package var column: Int
    /// What is wrong, in words, naming the key path (`sources[0].page_size`).
    package var message: String

    package init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `FILE:LINE:COLUMN: message`, or `FILE: message` for a problem without a position.
    package var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

/// Every problem found while loading a configuration file.
///
/// Loading does not stop at the first problem: a user fixing a file wants to see all
/// of them at once. The description is one line per diagnostic, in file order.
package struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems, sorted by position. Never empty.
    package var diagnostics: [ConfigurationDiagnostic]

    package init(diagnostics: [ConfigurationDiagnostic]) {
        self.diagnostics = diagnostics
    }

    package var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
