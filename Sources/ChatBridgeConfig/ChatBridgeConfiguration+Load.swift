import Foundation

extension ChatBridgeConfiguration {
    /// Where the configuration is looked for when neither `--config` nor
    /// `CHATBRIDGE_CONFIG` names a file.
    package static let defaultRelativePath = "config/chatbridge.yaml"

    /// The configuration file to read when `--config` is not given: the file named by the
    /// environment variable `CHATBRIDGE_CONFIG`, else `config/chatbridge.yaml`.
    package static func defaultPath(environment: [String: String]) -> String {
        if let path = environment["CHATBRIDGE_CONFIG"], !path.isEmpty { return path }
        return defaultRelativePath
    }

    /// Reads, substitutes, validates and resolves the configuration file at `path`.
    ///
    /// - Parameters:
    ///   - path: The file, absolute or relative to `currentDirectory`. Diagnostics name
    ///     it as given here.
    ///   - environment: The variables `${NAME}` refers to (pass
    ///     `ProcessInfo.processInfo.environment` in the program, a literal in tests).
    ///   - currentDirectory: What a relative `path` is relative to; the process's
    ///     current directory when `nil`.
    /// - Throws: ``ConfigurationError`` with every problem of the file, each as
    ///   `FILE:LINE:COLUMN: message`; or a single `FILE: message` when it cannot be read.
    ///   - secrets: Whether every secret's `${VAR}` must be set (see ``SecretUse``).
    package static func load(
        path: String,
        environment: [String: String],
        currentDirectory: String? = nil,
        secrets: SecretUse = .required
    ) throws(ConfigurationError) -> ChatBridgeConfiguration {
        let workingDirectory = currentDirectory ?? FileManager.default.currentDirectoryPath
        let absolutePath = resolve(path: path, against: workingDirectory, home: environment["HOME"])
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: absolutePath))
        } catch {
            throw ConfigurationError(diagnostics: [
                ConfigurationDiagnostic(file: path, line: 0, column: 0, message: unreadableFileMessage(absolutePath: absolutePath)),
            ])
        }
        guard let yaml = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(diagnostics: [
                ConfigurationDiagnostic(file: path, line: 0, column: 0, message: "the file is not UTF-8 text"),
            ])
        }
        var parser = ConfigurationParser(
            yaml: yaml,
            displayFile: path,
            absoluteFile: absolutePath,
            baseDirectory: baseDirectory(forConfigurationFile: absolutePath),
            environment: environment,
            secrets: secrets
        )
        return try parser.parse()
    }

    /// Parses configuration text, as ``load(path:environment:currentDirectory:)`` does
    /// with the text of a file; for tests and for checking text before writing it.
    ///
    /// - Parameters:
    ///   - file: The name diagnostics show; also, when `baseDirectory` is `nil`, where
    ///     the text is taken to live (relative to the current directory).
    ///   - baseDirectory: What relative paths are resolved against; by default the one
    ///     ``baseDirectory(forConfigurationFile:)`` gives for `file`.
    package static func parse(
        yaml: String,
        file: String,
        baseDirectory: String? = nil,
        environment: [String: String]
    ) throws(ConfigurationError) -> ChatBridgeConfiguration {
        let absoluteFile = resolve(path: file, against: FileManager.default.currentDirectoryPath, home: environment["HOME"])
        var parser = ConfigurationParser(
            yaml: yaml,
            displayFile: file,
            absoluteFile: absoluteFile,
            baseDirectory: baseDirectory.map { resolve(path: $0, against: FileManager.default.currentDirectoryPath, home: nil) }
                ?? Self.baseDirectory(forConfigurationFile: absoluteFile),
            environment: environment
        )
        return try parser.parse()
    }

    /// The folder relative paths of a configuration file are resolved against: the
    /// parent of its folder when that folder is named `config`, else its folder.
    ///
    /// ```
    /// /srv/bridge/config/chatbridge.yaml  →  /srv/bridge   (store: state/x.sqlite is /srv/bridge/state/x.sqlite)
    /// /etc/chatbridge.yaml                →  /etc
    /// ```
    package static func baseDirectory(forConfigurationFile absolutePath: String) -> String {
        let folder = parentDirectory(of: normalize(absolutePath))
        let folderName = folder.split(separator: "/").last.map(String.init) ?? ""
        return folderName == "config" ? parentDirectory(of: folder) : folder
    }

    /// `path` made absolute against `base` (`~/` against `home` when given), with `.`,
    /// `..` and repeated or trailing slashes removed. Purely textual: symbolic links
    /// are left alone.
    package static func resolve(path: String, against base: String, home: String? = nil) -> String {
        if let home, !home.isEmpty, path == "~" || path.hasPrefix("~/") {
            return normalize(home + "/" + path.dropFirst(1))
        }
        return normalize(path.hasPrefix("/") ? path : base + "/" + path)
    }

    private static func normalize(_ absolutePath: String) -> String {
        var parts: [Substring] = []
        for part in absolutePath.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    private static func parentDirectory(of absolutePath: String) -> String {
        var parts = absolutePath.split(separator: "/")
        guard !parts.isEmpty else { return "/" }
        parts.removeLast()
        return "/" + parts.joined(separator: "/")
    }

    private static func unreadableFileMessage(absolutePath: String) -> String {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: absolutePath, isDirectory: &isDirectory) {
            return "no configuration file here (create one with `chatbridge init`, or name another with --config or CHATBRIDGE_CONFIG)"
        }
        if isDirectory.boolValue {
            return "this is a folder, not a configuration file"
        }
        return "the configuration file cannot be read (check its permissions)"
    }
}
