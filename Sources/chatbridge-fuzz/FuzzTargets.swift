import ChatBridgeConfig
import ChatBridgeCore
import Foundation
import Formats
import Rules
import UnipileScanner

/// The fuzz targets: each takes arbitrary bytes and traps (`fatalError`) only when a
/// property chatbridge relies on does not hold. A thrown parse error is a fine outcome;
/// a crash, a hang or a disagreement is a finding.
enum FuzzTarget: String, CaseIterable {
    /// The page scanner against `JSONValue` on the same bytes: same accept/reject, same
    /// ids, each item's raw bytes parse to the item; and where an item ends, found 64 bytes
    /// at a time, against following each byte.
    case scanner
    /// `JSONValue`: what parses prints to text that parses to the same value.
    case json
    /// CEL: lexer, parser, checker and evaluator finish on every input (first line the
    /// expression, the rest a JSON object of variables).
    case cel
    /// The configuration file and rule file parsers: diagnostics, never a crash.
    case config
    /// Mustache templates with hostile values: rendering finishes, and the JSON-safe
    /// formats stay valid JSON.
    case template

    func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .scanner: Self.scanner(bytes)
        case .json: Self.json(bytes)
        case .cel: Self.cel(bytes)
        case .config: Self.config(bytes)
        case .template: Self.template(bytes)
        }
    }

    static func scanner(_ bytes: UnsafeRawBufferPointer) {
        itemEnds(bytes)
        let body = Array(bytes)
        let plain = Result { () throws(ChatPageScanError) in try ChatPageScanner.scan(body, fingerprintSeed: 7) }
        let parsed = try? JSONValue.parse(body)
        guard case .success(let scanned) = plain else {
            // Rejected: a scan that recognises nothing refuses it with the same error.
            let recognisingNothing = Result { () throws(ChatPageScanError) in
                try ChatPageScanner.scan(body, fingerprintSeed: 7, recognising: { $0.map { _ in false } })
            }
            guard case .failure(let error) = recognisingNothing, case .failure(error) = plain else {
                fatalError("recognising nothing answers otherwise than the scanner")
            }
            // Rejected: then the bytes must not be a valid page for JSONValue either.
            if let parsed, isValidPage(parsed) {
                fatalError("the scanner rejected a page JSONValue accepts")
            }
            return
        }
        guard let parsed, let items = parsed["items"]?.arrayValue else {
            fatalError("the scanner accepted a page JSONValue rejects")
        }
        guard items.count == scanned.items.count else { fatalError("item counts differ") }
        for (item, found) in zip(items, scanned.items) {
            guard let id = item["id"]?.stringValue, id == found.id.text(in: body) else { fatalError("ids differ") }
            guard found.key == ChatKey(id: id) else { fatalError("the id's key is not the key of the id") }
            guard item["account_id"]?.stringValue == found.accountID?.text(in: body),
                  item["account_type"]?.stringValue == found.accountType?.text(in: body)
            else { fatalError("account fields differ") }
            guard found.range.lowerBound >= 0, found.range.upperBound <= body.count,
                  let raw = try? JSONValue.parse(Array(body[found.range])), raw == item
            else { fatalError("an item's raw bytes are not the item") }
            guard found.fingerprint == ChatFingerprint.fingerprint(of: body[found.range], seed: 7) else {
                fatalError("fingerprint differs")
            }
        }
        // Recognising: with every item's fingerprint known, the same items are only located.
        let known = Set(scanned.items.map(\.fingerprint))
        guard let recognised = try? ChatPageScanner.scan(body, fingerprintSeed: 7, recognising: { $0.map(known.contains) })
        else { fatalError("recognising refused a page the scanner accepts") }
        guard recognised.items.isEmpty,
              recognised.recognised.map(\.range) == scanned.items.map(\.range),
              recognised.recognised.map(\.fingerprint) == scanned.items.map(\.fingerprint)
        else { fatalError("recognised items are not the scanned items") }
        let cursor = parsed["cursor"]
        guard cursor?.stringValue == scanned.cursor || (scanned.cursor == nil && (cursor == nil || cursor == .null)) else {
            fatalError("cursors differ")
        }
    }

    /// `ChatPageScanner.objectEnd` with both kinds of block masks against following each
    /// byte, from the first byte and from each of the first 16 `{` and `[`: any bytes may be
    /// an item's, valid JSON or not.
    static func itemEnds(_ bytes: UnsafeRawBufferPointer) {
        var starts = [0]
        for offset in bytes.indices where starts.count <= 16 && (bytes[offset] | 0x20) == UInt8(ascii: "{") {
            starts.append(offset)
        }
        for start in starts where start < bytes.count {
            let expected = ChatPageScanner.objectEndByteByByte(in: bytes, from: start)
            for masks in ChatPageScanner.BlockMasks.allCases
            where ChatPageScanner.objectEnd(in: bytes, from: start, masks: masks) != expected {
                fatalError("the item end from \(start) with \(masks) block masks is not the one byte by byte")
            }
        }
    }

    /// A page as chatbridge accepts it: an object with an `items` array of objects with a
    /// non-empty string `id`, and a `cursor` that is absent, null or a non-empty string.
    static func isValidPage(_ page: JSONValue) -> Bool {
        guard let items = page["items"]?.arrayValue else { return false }
        switch page["cursor"] {
        case nil, .null?: break
        case .string(let text)?: if text.isEmpty { return false }
        default: return false
        }
        // A NUL in an id or an account field is refused (ChatPageScanner.scanItem).
        func hasNUL(_ key: String, of item: JSONValue) -> Bool {
            item[key]?.stringValue?.unicodeScalars.contains("\u{0}") ?? false
        }
        return items.allSatisfy { item in
            guard item.objectValue != nil, let id = item["id"]?.stringValue else { return false }
            return !id.isEmpty && !["id", "account_id", "account_type"].contains { hasNUL($0, of: item) }
        }
    }

    static func json(_ bytes: UnsafeRawBufferPointer) {
        guard let value = try? JSONValue.parse(Array(bytes)) else { return }
        let text = value.compactString
        guard let again = try? JSONValue.parse(text) else { fatalError("printed JSON does not parse: \(text)") }
        guard again == value else { fatalError("the round trip changed the value") }
        guard again.compactString == text else { fatalError("printing is not stable") }
    }

    static func cel(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let expression = String(parts.first ?? "")
        var variables = JSONValue.object(JSONObject())
        if parts.count > 1, let parsed = try? JSONValue.parse(String(parts[1])), parsed.objectValue != nil {
            variables = parsed
        }
        _ = CELEvalTool.evaluate(expression: expression, variables: variables)
    }

    static func config(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? ChatBridgeConfiguration.parse(
            yaml: text, file: "/srv/bridge/config/chatbridge.yaml", environment: ["UNIPILE_API_KEY": "k"])
        _ = try? RuleSet.parse(yaml: text, file: "rules/fuzz.yaml", sinkNames: ["stdout", "hook"])
    }

    static func template(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
        let hostileName = parts.count > 1 ? String(parts[1]) : text
        let event = Event(
            id: "0190a0b0-0000-7000-8000-000000000001", type: .chatChanged, kinds: [.unreadIncreased],
            occurredAt: Date(timeIntervalSince1970: 1_800_000_000), source: "main", accountType: "LINKEDIN",
            chatID: "c1", chat: ["id": "c1", "name": .string(hostileName), "unread_count": 3])
        let json = event.json(rule: "vip")
        if let template = try? DeliveryTemplate(String(parts.first ?? "")) {
            let rendered = template.render(json)
            for format in DeliveryFormat.allCases {
                let body = format.body(event: json, text: rendered)
                guard (try? JSONValue.parse(body)) != nil else { fatalError("\(format) body is not JSON") }
            }
        }
        let summary = DeliverySummary.text(for: json)
        _ = summary
    }
}
