import Foundation

/// `${NAME}` substitution in configuration values.
///
/// - `${NAME}` is the value of the environment variable `NAME`; when it is not set,
///   that is a problem naming `NAME` (never a value: these are often secrets).
/// - `${NAME:-default}` is `default` when `NAME` is unset or empty, as in a POSIX shell.
/// - `$$` is a literal `$`; any other `$` is kept as written, so a password such as
///   `pa$word` needs no escaping.
/// - `${file:/ABSOLUTE/PATH}` is the content of that file, one trailing line break
///   removed: a secret kept in a file, such as a systemd credential
///   (`LoadCredential=unipile-api-key:/etc/chatbridge/unipile-api-key` in the unit,
///   `api_key: ${file:/run/credentials/chatbridge.service/unipile-api-key}` in the
///   config). A file that cannot be read is a problem naming the path, never the content.
///
/// Substitution is one pass: a variable's value is never scanned for `${` again, so a
/// value cannot smuggle in a reference to another variable.
package enum ConfigEnvironmentSubstitution {
    /// What went wrong in one `${...}`. The message names the variable, never a value.
    struct Problem: Sendable, Hashable {
        var message: String
        /// The variable, when the problem is only that it is not set.
        var unsetVariable: String? = nil
        /// The file of a `${file:PATH}` that could not be read (missing, no permission):
        /// as for an unset variable, a command that never uses the secret does without it.
        var unreadableFile: String? = nil

        /// What is missing, as a person names it: `UNIPILE_API_KEY`, `file:/run/...`.
        var missingSource: String? { unsetVariable ?? unreadableFile.map { "file:\($0)" } }
    }

    /// Every problem of one text.
    struct Failure: Error, Sendable, Hashable {
        var problems: [Problem]
    }

    /// The most bytes a `${file:...}` may hold: secrets are short, and a path mistyped to a
    /// large file must not be read whole.
    static let maximumFileBytes = 64 << 10

    /// A text with its `${...}` replaced.
    struct Substitution: Sendable, Hashable {
        var text: String
        /// What came from outside: each `${NAME}`'s variable and each `${file:PATH}`'s
        /// content (not a `:-default`, which the file holds), each once. Those of a secret
        /// value are secrets of their own (``ChatBridgeConfiguration/substitutedSecrets``):
        /// a token inside a URL or a body, which a receiver may echo.
        var values: [String] = []
    }

    /// Replaces every `${...}` in `text`, or returns every problem found in it.
    ///
    /// - Parameter readFile: reads a `${file:PATH}` (the real file system unless a test
    ///   says otherwise).
    static func substitute(
        _ text: String, environment: [String: String],
        readFile: (String) -> Result<String, FileProblem> = readSecretFile
    ) -> Result<Substitution, Failure> {
        guard text.contains("$") else { return .success(Substitution(text: text)) }
        var output = ""
        var values: [String] = []
        func inserted(_ value: String) {
            output += value
            if !value.isEmpty, !values.contains(value) { values.append(value) }
        }
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
            if body.hasPrefix("file:") {
                let path = String(body.dropFirst("file:".count))
                guard path.hasPrefix("/") else {
                    problems.append(Problem(message: "${file:PATH} needs an absolute path, such as ${file:/run/credentials/chatbridge.service/api-key}"))
                    continue
                }
                switch readFile(path) {
                case .success(let content): inserted(content)
                case .failure(let problem):
                    problems.append(Problem(message: "${file:\(path)}: \(problem.reason)", unreadableFile: path))
                }
                continue
            }
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
                inserted(value)
            } else if let fallback {
                output += fallback
            } else {
                problems.append(Problem(
                    message: "environment variable \(name) is not set (export it, or write ${\(name):-default} in the file to give a default)",
                    unsetVariable: name))
            }
        }
        return problems.isEmpty ? .success(Substitution(text: output, values: values)) : .failure(Failure(problems: problems))
    }

    /// Why a `${file:...}` could not be read. Never holds any of the file's content.
    struct FileProblem: Error, Sendable, Hashable {
        var reason: String
    }

    /// The content of the file at `path` (UTF-8, at most ``maximumFileBytes``), with one
    /// trailing `\n` or `\r\n` removed.
    static func readSecretFile(_ path: String) -> Result<String, FileProblem> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .failure(FileProblem(reason: "no such file"))
        }
        guard !isDirectory.boolValue else { return .failure(FileProblem(reason: "this is a folder, not a file")) }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure(FileProblem(reason: "the file cannot be read (check its permissions)"))
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumFileBytes + 1) ?? Data()
        } catch {
            return .failure(FileProblem(reason: "the file cannot be read (check its permissions)"))
        }
        guard data.count <= maximumFileBytes else {
            return .failure(FileProblem(reason: "the file is larger than \(maximumFileBytes / 1024) KiB: not a secret"))
        }
        guard var text = String(data: data, encoding: .utf8) else {
            return .failure(FileProblem(reason: "the file is not UTF-8 text"))
        }
        if text.hasSuffix("\r\n") { text.removeLast(1) } else if text.hasSuffix("\n") { text.removeLast() }
        return .success(text)
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`, the names a shell can export.
    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        func isLetter(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" }
        return isLetter(first) && name.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
    }
}
