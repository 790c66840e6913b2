import Foundation
import Mustache
import ChatBridgeCore

/// A Mustache template that renders an event as plain text: a rule's or a sink's
/// `template`, or one argument of an exec sink's command.
///
/// The event JSON is the context: objects are sections with members, arrays are lists,
/// `null` is empty. Two extra names are there unless the event has members of the same
/// names: `summary`, the default one-line text (``DeliverySummary``), and, in exec
/// arguments, `text`, the rule's template rendered (else the summary).
///
/// Values render as they are, without HTML escaping: `{{x}}` and `{{{x}}}` give the same
/// text. Escaping is the job of each format (Slack's `&lt;`, JSON string escapes), so that
/// it happens exactly once.
///
/// ```swift
/// let template = try DeliveryTemplate("{{chat.name}}: {{#kinds}}{{.}} {{/kinds}}")
/// template.render(event.json(rule: "vip"))   // "Jane <3: unread.increased "
/// ```
///
/// A template that does not parse is a configuration error, found when the configuration
/// is loaded: ``validate(_:)`` throws a ``TemplateError`` with its line and column.
package struct DeliveryTemplate: Sendable, CustomStringConvertible {
    /// The template as written.
    package let text: String
    private let template: MustacheTemplate

    /// The pragma that switches swift-mustache from HTML escaping to none. It sits alone
    /// on a first line so that it is a "standalone" tag: its line, newline included,
    /// disappears, and the user's template starts on a fresh line exactly as if the
    /// pragma were not there (leading newlines and first-line standalone tags behave as
    /// in any Mustache).
    private static let plainTextPragma = "{{% CONTENT_TYPE: TEXT}}\n"

    /// Parses `text`.
    package init(_ text: String) throws(TemplateError) {
        self.text = text
        do {
            template = try MustacheTemplate(string: Self.plainTextPragma + text)
        } catch let error as MustacheTemplate.ParserError {
            throw TemplateError(parserError: error)
        } catch {
            throw TemplateError(message: "\(error)", line: nil, column: nil)
        }
    }

    /// Throws a ``TemplateError`` when `template` is not valid Mustache.
    package static func validate(_ template: String) throws(TemplateError) {
        _ = try DeliveryTemplate(template)
    }

    /// Renders the template with `event` (the event JSON as delivered, with `rule`) as context.
    ///
    /// - Parameter extras: names added to the context when the event has no member of the
    ///   same name (`summary` is always added this way).
    ///   - place: where the text lands, which says how every value is escaped before it
    ///     is inserted (``TemplatePlace``); plain text (no escaping) unless said otherwise.
    ///     Outside plain text, the context also holds `json`: `{{json.chat.name}}` is the
    ///     value written as JSON (`"Jane \"JJ\" Doe"`, `3`, `null`, an object).
    package func render(_ event: JSONValue, extras: [String: String] = [:], place: TemplatePlace = .text) -> String {
        var context: [String: Any]
        if case .object = event, let dictionary = MustacheJSON.value(event, place: place) as? [String: Any] {
            context = dictionary
        } else {
            context = [:]
        }
        var extras = extras
        if extras["summary"] == nil { extras["summary"] = DeliverySummary.text(for: event) }
        for (key, value) in extras where context[key] == nil {
            context[key] = place.escaped(value)
        }
        if place != .text, context["json"] == nil {
            var whole = event.objectValue ?? JSONObject()
            for (key, value) in extras where whole[key] == nil { whole[key] = .string(value) }
            context["json"] = MustacheJSONText(value: .object(whole), place: place)
        }
        return template.render(context)
    }

    package var description: String { text }
}

/// A template that does not parse, with where (1-based line and column of the
/// template's text) when the parser knows.
package struct TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    package var message: String
    package var line: Int?
    package var column: Int?

    package init(message: String, line: Int?, column: Int?) {
        self.message = message
        self.line = line
        self.column = column
    }

    init(parserError: MustacheTemplate.ParserError) {
        let reason: String
        switch parserError.error {
        case MustacheTemplate.Error.sectionCloseNameIncorrect: reason = "a section is closed with a different name than it was opened"
        case MustacheTemplate.Error.unfinishedName: reason = "a tag is not finished (missing \"}}\" or a bad name)"
        case MustacheTemplate.Error.expectedSectionEnd: reason = "a section is opened but never closed"
        case MustacheTemplate.Error.invalidSetDelimiter: reason = "invalid set-delimiter tag"
        case MustacheTemplate.Error.transformAppliedToInheritanceSection: reason = "a transform cannot apply to an inheritance section"
        case MustacheTemplate.Error.illegalTokenInsideInheritSection: reason = "illegal tag inside an inheritance section"
        case MustacheTemplate.Error.textInsideInheritSection: reason = "text inside an inheritance section"
        case MustacheTemplate.Error.invalidConfigVariableSyntax: reason = "invalid pragma ({{% ... }})"
        case MustacheTemplate.Error.unrecognisedConfigVariable: reason = "unknown pragma ({{% ... }})"
        default:
            // The parser reads past the end looking for a tag's "}}" (`{{chat.name}`).
            reason = "\(parserError.error)" == "overflow" ? "a tag is not closed (missing \"}}\")" : "invalid template"
        }
        message = reason
        // The pragma line is line 1 of what the parser saw.
        line = max(1, parserError.context.lineNumber - 1)
        column = parserError.context.columnNumber
    }

    package var description: String {
        if let line, let column { return "template line \(line), column \(column): \(message)" }
        return "template: \(message)"
    }
}

/// The event JSON as the values swift-mustache walks: dictionaries, arrays, strings,
/// numbers, booleans; `null` as `NSNull` (which it treats as absent, and which stops a
/// name from being looked up in outer sections).
///
/// Strings are escaped for `place` here, before any template sees them, so that `{{x}}`
/// and `{{{x}}}` both insert an escaped value: no tag can bypass the escaping.
enum MustacheJSON {
    static func value(_ json: JSONValue, place: TemplatePlace = .text) -> Any {
        switch json {
        case .null: return NSNull()
        case .bool(let b): return b
        case .int(let i): return Int(i)
        case .double(let d): return d
        case .string(let s): return place.escaped(s)
        case .array(let items): return items.map { value($0, place: place) }
        case .object(let object):
            var dictionary: [String: Any] = [:]
            dictionary.reserveCapacity(object.count)
            for member in object { dictionary[member.key] = value(member.value, place: place) }
            return dictionary
        }
    }
}

/// `json` in a template's context: walks like the event (`json.chat.name`) and renders
/// the value it reaches as compact JSON, escaped for its place (as is in a JSON body,
/// where it already is JSON).
struct MustacheJSONText: MustacheParent, MustacheCustomRenderable {
    let value: JSONValue
    let place: TemplatePlace

    /// A member the value does not have is `null`: in JSON, what is missing is null, and
    /// a body that names `json.chat` stays valid JSON for an event without a chat.
    func child(named name: String) -> Any? {
        MustacheJSONText(value: value[name] ?? .null, place: place)
    }

    var renderText: String {
        let text = value.compactString
        return place == .jsonString ? text : place.escaped(text)
    }

    var isNull: Bool { false }
}

/// The default one-line text of an event, used when neither the rule nor the sink has a
/// `template`: `LinkedIn · Jane Doe: 3 unread (was 0)`.
///
/// Covers every type and kind: `LinkedIn · Jane Doe: renamed Old → New`,
/// `WhatsApp · +33 6 12: new chat, 2 unread`, `LinkedIn · main: account error: Disconnected
/// account (HTTP 401)`. Chat names are hostile data: control characters and line breaks
/// become spaces, so the text stays one line.
package enum DeliverySummary {
    package static func text(for event: JSONValue) -> String {
        let type = event["type"]?.stringValue ?? "event"
        let chat = event["chat"] ?? .null
        let accountType = event["account_type"]?.stringValue ?? chat["account_type"]?.stringValue
        let network = accountType.map { accountTypeName($0) + " · " } ?? ""
        let source = event["source"]?.stringValue.map(oneLine) ?? "source"

        switch type {
        case "chat.added", "chat.changed", "chat.removed":
            let name = chatName(event)
            let clauses = kindClauses(event)
            return "\(network)\(name): \(clauses.isEmpty ? "changed" : clauses.joined(separator: ", "))"
        case "account.error":
            let error = event["error"] ?? .null
            var text = "\(network)\(source): account error"
            let title = error["title"]?.stringValue ?? error["type"]?.stringValue
            if let title, !title.isEmpty { text += ": \(oneLine(title))" }
            if let status = error["status"].flatMap(number) { text += " (HTTP \(status))" }
            return text
        case "account.recovered":
            return "\(network)\(source): account recovered"
        case "digest":
            return digestText(event)
        default:
            return "\(network)\(source): \(oneLine(type))"
        }
    }

    /// The most events a digest's summary names; the rest are counted.
    static let digestNamedEvents = 10

    /// `5 changes: Jane Doe (unread.increased), Bob (chat.added), ...`: each event's chat
    /// and kinds (its type when it has none), in detection order; `vip: 4 changes` when
    /// the digest carries no events.
    static func digestText(_ digest: JSONValue) -> String {
        let events = digest["events"]?.arrayValue ?? []
        let count = digest["count"].flatMap(number) ?? String(events.count)
        let counted = "\(count) \(count == "1" ? "change" : "changes")"
        guard !events.isEmpty else {
            return "\(digest["rule"]?.stringValue.map(oneLine) ?? "digest"): \(counted)"
        }
        let named = events.prefix(digestNamedEvents).map { event -> String in
            let type = event["type"]?.stringValue.map(oneLine) ?? "event"
            let kinds = (event["kinds"]?.arrayValue ?? []).compactMap(\.stringValue).map(oneLine)
            let what = kinds.isEmpty ? type : kinds.joined(separator: ", ")
            let subject = type.hasPrefix("account.") ? (event["source"]?.stringValue.map(oneLine) ?? "source") : chatName(event)
            return "\(subject) (\(what))"
        }
        let more = events.count > digestNamedEvents ? ", and \(events.count - digestNamedEvents) more" : ""
        return "\(counted): \(named.joined(separator: ", "))\(more)"
    }

    /// The provider's usual name: `LINKEDIN` → `LinkedIn`, `WHATSAPP` → `WhatsApp`,
    /// `TWITTER` → `X`; others capitalised (`SOME_NEW_TYPE` → `Some new type`).
    package static func accountTypeName(_ raw: String) -> String {
        switch raw.uppercased() {
        case "LINKEDIN": return "LinkedIn"
        case "WHATSAPP": return "WhatsApp"
        case "TWITTER", "X": return "X"
        case "SLACK": return "Slack"
        case "MESSENGER": return "Messenger"
        case "INSTAGRAM": return "Instagram"
        case "TELEGRAM": return "Telegram"
        case "MAIL": return "Mail"
        case "GOOGLE", "GMAIL": return "Gmail"
        case "OUTLOOK", "MICROSOFT": return "Outlook"
        case "IMAP": return "IMAP"
        default:
            let words = oneLine(raw).replacingOccurrences(of: "_", with: " ").lowercased()
            guard let first = words.first else { return "Unknown" }
            return first.uppercased() + words.dropFirst()
        }
    }

    /// The chat's name, else its subject, else `chat ID`.
    static func chatName(_ event: JSONValue) -> String {
        let chat = event["chat"] ?? .null
        for candidate in [chat["name"], chat["subject"]] {
            if let text = candidate?.stringValue.map(oneLine), !text.isEmpty { return text }
        }
        let id = event["chat_id"]?.stringValue ?? chat["id"]?.stringValue
        return id.map { "chat \(oneLine($0))" } ?? "a chat"
    }

    /// The fields whose changes a kind already describes; the rest make `chat.updated`.
    private static let describedFields: Set<String> = [
        "unread_count", "archived", "pinned", "muted_until", "name", "timestamp", "read_only", "folder",
    ]

    static func kindClauses(_ event: JSONValue) -> [String] {
        let chat = event["chat"] ?? .null
        let changes = event["changes"] ?? .null
        func from(_ field: String) -> JSONValue { changes[field]?["from"] ?? .null }
        func to(_ field: String) -> JSONValue { changes[field]?["to"] ?? chat[field] ?? .null }

        var clauses: [String] = []
        for kind in event["kinds"]?.arrayValue ?? [] {
            switch kind.stringValue ?? "" {
            case "chat.added":
                if let unread = to("unread_count").doubleValue, unread > 0, let text = number(to("unread_count")) {
                    clauses.append("new chat, \(text) unread")
                } else {
                    clauses.append("new chat")
                }
            case "chat.removed": clauses.append("chat removed")
            case "unread.increased", "unread.decreased":
                clauses.append("\(number(to("unread_count")) ?? "?") unread (was \(number(from("unread_count")) ?? "?"))")
            case "unread.cleared": clauses.append("all read (was \(number(from("unread_count")) ?? "?") unread)")
            case "chat.archived": clauses.append("archived")
            case "chat.unarchived": clauses.append("unarchived")
            case "chat.pinned": clauses.append("pinned")
            case "chat.unpinned": clauses.append("unpinned")
            case "chat.muted": clauses.append("muted")
            case "chat.unmuted": clauses.append("unmuted")
            case "chat.mute_changed": clauses.append("mute changed")
            case "chat.renamed":
                let old = from("name").stringValue.map(oneLine) ?? ""
                let new = to("name").stringValue.map(oneLine) ?? ""
                switch (old.isEmpty, new.isEmpty) {
                case (false, false): clauses.append("renamed \(old) → \(new)")
                case (true, false): clauses.append("named \(new)")
                case (false, true): clauses.append("name \(old) removed")
                case (true, true): clauses.append("renamed")
                }
            case "chat.activity": clauses.append("new activity")
            case "chat.read_only_changed":
                clauses.append(isTruthy(to("read_only")) ? "now read-only" : "no longer read-only")
            case "chat.moved":
                let folder = folderText(to("folder"))
                clauses.append(folder.isEmpty ? "moved" : "moved to \(folder)")
            case "chat.updated":
                let fields = (changes.objectValue?.keys ?? []).filter { !describedFields.contains($0) }.map(oneLine)
                clauses.append(fields.isEmpty ? "updated" : "updated \(fields.joined(separator: ", "))")
            case let other: clauses.append(oneLine(other))
            }
        }
        return clauses
    }

    private static func folderText(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return oneLine(s)
        case .array(let items): return items.compactMap { $0.stringValue.map(oneLine) }.joined(separator: ", ")
        default: return ""
        }
    }

    private static func isTruthy(_ value: JSONValue) -> Bool {
        switch value {
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        default: return false
        }
    }

    /// A JSON number as text: `3`, `2.5`; `nil` when it is not a number.
    static func number(_ value: JSONValue) -> String? {
        switch value {
        case .int(let i): return String(i)
        case .double(let d) where d.isFinite:
            return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        default: return nil
        }
    }

    /// `text` with control characters and line or paragraph separators as spaces, trimmed.
    static func oneLine(_ text: String) -> String {
        let scalars = text.unicodeScalars.map { scalar -> Unicode.Scalar in
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator: " "
            default: scalar
            }
        }
        return String(String.UnicodeScalarView(scalars)).trimmingCharacters(in: .whitespaces)
    }
}
