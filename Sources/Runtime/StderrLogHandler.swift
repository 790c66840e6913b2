import Foundation
import Logging
import Synchronization
import ChatBridgeCore

/// How log lines look on standard error.
package enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-25T10:00:00.000Z warning source=main poll failed: ...`
    case text
    /// One JSON object per line: `{"ts":...,"level":...,"msg":...,"source":...}`.
    case json
}

/// A swift-log handler that writes one line per message to standard error, as text or
/// JSON, and never lets a known secret through: every configured secret value is
/// replaced by `<redacted>` in the message and metadata before the line is written.
///
/// ```swift
/// let secrets = LogRedactor(secrets: ["sk_live_123"])
/// LoggingSystem.bootstrap { label in
///     StderrLogHandler(label: label, format: .text, level: .info, redactor: secrets)
/// }
/// ```
package struct StderrLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    private let format: LogFormat
    private let redactor: LogRedactor
    private let label: String

    package init(label: String, format: LogFormat, level: Logger.Level, redactor: LogRedactor) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.redactor = redactor
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let timestamp = Timestamp.iso8601(Date())
        let message = redactor.redact(event.message.description)
        var line: String
        switch format {
        case .text:
            line = "\(timestamp) \(event.level)"
            for key in merged.keys.sorted() {
                line += " \(key)=\(Self.quoteIfNeeded(redactor.redact("\(merged[key]!)")))"
            }
            line += " \(message.replacingOccurrences(of: "\n", with: "\\n"))"
        case .json:
            var object = JSONObject()
            object["ts"] = .string(timestamp)
            object["level"] = .string(event.level.rawValue)
            object["msg"] = .string(message)
            for key in merged.keys.sorted() { object[key] = .string(redactor.redact("\(merged[key]!)")) }
            line = JSONValue.object(object).compactString
        }
        line += "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func quoteIfNeeded(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) else {
            return value
        }
        var quoted: [UInt8] = []
        JSONValue.writeString(value, into: &quoted)
        return String(decoding: quoted, as: UTF8.self)
    }
}

/// Replaces known secret values in log text. Shared by every handler; updated on reload.
package final class LogRedactor: Sendable {
    private let secrets: Mutex<[String]>

    package init(secrets: [String] = []) {
        self.secrets = Mutex(Self.normalize(secrets))
    }

    /// Replaces the secrets to hide (after a reload).
    package func update(_ newSecrets: [String]) {
        secrets.withLock { $0 = Self.normalize(newSecrets) }
    }

    package func redact(_ text: String) -> String {
        let current = secrets.withLock { $0 }
        guard !current.isEmpty else { return text }
        var result = text
        for secret in current where result.contains(secret) {
            result = result.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return result
    }

    /// Longest first, so a secret that contains another is hidden whole; very short
    /// values (a 1-character "secret") would mangle every line and are left out.
    private static func normalize(_ secrets: [String]) -> [String] {
        Array(Set(secrets.filter { $0.count >= 4 })).sorted { $0.count > $1.count }
    }
}
