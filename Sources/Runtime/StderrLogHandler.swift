import Foundation
import Logging
import Synchronization
import ChatBridgeCore

/// How log lines look on standard error.
package enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-25T10:00:00.000Z warning poll failed: ... source=main`
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
        let message = redactor.redact(event.message.description)
        var fields: [(String, JSONValue)] = []
        for key in merged.keys.sorted() { fields.append((key, Self.jsonValue(merged[key]!, redactor: redactor))) }
        let line = Self.line(format: format, level: event.level, message: message, fields: fields, at: Date())
        StandardOutput.write(Array(line.utf8), to: 2)
    }

    /// One log line with its `\n`, as every line on standard error looks.
    ///
    /// Text puts the message first and the fields after it:
    /// `2026-11-25T10:00:00.000Z info poll complete source=main chats=40`. JSON is one
    /// object, `{"ts": ..., "level": ..., "msg": ..., FIELDS}`, numbers and booleans typed.
    /// The CLI writes its own messages through this too, so that with `--log-format json`
    /// every line is JSON.
    package static func line(
        format: LogFormat, level: Logger.Level, message: String, fields: [(String, JSONValue)], at date: Date
    ) -> String {
        let timestamp = Timestamp.iso8601(date)
        switch format {
        case .text:
            var line = "\(timestamp) \(level) \(escapingLineFeeds(message))"
            for (key, value) in fields {
                line += " \(key)=\(quoteIfNeeded(textValue(value)))"
            }
            return line + "\n"
        case .json:
            var object = JSONObject()
            object["ts"] = .string(timestamp)
            object["level"] = .string(level.rawValue)
            object["msg"] = .string(message)
            for (key, value) in fields where object[key] == nil { object[key] = value }
            return JSONValue.object(object).compactString + "\n"
        }
    }

    /// `text` on one line: each line feed written as `\n` (a `\r` before it is kept).
    private static func escapingLineFeeds(_ text: String) -> String {
        guard text.utf8.contains(0x0A) else { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            if byte == 0x0A { bytes.append(contentsOf: [0x5C, 0x6E]) } else { bytes.append(byte) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A field's value in a text line: strings as they are, lists as `a,b`, the rest as JSON.
    private static func textValue(_ value: JSONValue) -> String {
        switch value {
        case .string(let string): string
        case .array(let items): items.map(textValue).joined(separator: ",")
        default: value.compactString
        }
    }

    /// A metadata value as JSON: integers, floating-point numbers and booleans given as
    /// `.stringConvertible` stay numbers and booleans; everything else is a (redacted) string.
    static func jsonValue(_ value: Logger.MetadataValue, redactor: LogRedactor) -> JSONValue {
        switch value {
        case .string(let string):
            return .string(redactor.redact(string))
        case .stringConvertible(let convertible):
            switch convertible {
            case let bool as Bool: return .bool(bool)
            case let int as any BinaryInteger:
                if let exact = Int64(exactly: int) { return .int(exact) }
            case let double as Double where double.isFinite: return .double(double)
            case let float as Float where float.isFinite: return .double(Double(float))
            default: break
            }
            return .string(redactor.redact(convertible.description))
        case .array(let items):
            return .array(items.map { jsonValue($0, redactor: redactor) })
        case .dictionary(let members):
            var object = JSONObject()
            for key in members.keys.sorted() { object[key] = jsonValue(members[key]!, redactor: redactor) }
            return .object(object)
        }
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
    /// values (a 1-character "secret") would mangle every line and are left out. A
    /// secret is also hidden as a Swift description and as JSON show it (a carriage
    /// return as `\r`): an error's description quotes a header value that way.
    private static func normalize(_ secrets: [String]) -> [String] {
        var forms = Set<String>()
        for secret in secrets where secret.count >= 4 {
            forms.insert(secret)
            forms.insert(String(String(reflecting: secret).dropFirst().dropLast()))
            var json: [UInt8] = []
            JSONValue.writeString(secret, into: &json)
            forms.insert(String(decoding: json.dropFirst().dropLast(), as: UTF8.self))
        }
        return forms.sorted { $0.count > $1.count }
    }
}
