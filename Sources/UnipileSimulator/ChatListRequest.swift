/// The seven providers the `account_type` parameter accepts.
enum UnipileAccountType: String, CaseIterable, Sendable {
    case whatsapp = "WHATSAPP"
    case linkedin = "LINKEDIN"
    case slack = "SLACK"
    case twitter = "TWITTER"
    case messenger = "MESSENGER"
    case instagram = "INSTAGRAM"
    case telegram = "TELEGRAM"
}

/// The opaque `cursor` of a ChatList: the sort position of the last chat served and the
/// 1-based index of the page it asks for.
///
/// Encoded as base64url of `c1|PAGE|TIMESTAMP|CHECK|ID`, where CHECK is a hash of the rest:
/// anything the simulator did not issue is refused as unknown. Because it names a sort
/// position rather than an offset, a cursor stays valid while chats change; the next page
/// simply continues after that position (pages shift, as with the real API).
struct ChatCursor: Sendable, Equatable {
    /// 1-based index, in the cursor chain, of the page this cursor fetches (the first page,
    /// fetched without a cursor, is 1).
    var page: Int
    /// The sort position of the last chat of the previous page.
    var after: ChatSortKey

    var encoded: String {
        let body = "\(page)|\(after.timestamp.map(String.init) ?? "-")"
        let text = "c1|\(body)|\(Self.check(body: body, id: after.id))|\(after.id)"
        return Base64URL.encode(Array(text.utf8))
    }

    enum DecodingError: Error, Equatable {
        case malformed
        case unknown
    }

    init(page: Int, after: ChatSortKey) {
        self.page = page
        self.after = after
    }

    init(decoding text: String) throws(DecodingError) {
        guard !text.isEmpty, let bytes = Base64URL.decode(text),
            let decoded = String(validating: bytes, as: UTF8.self)
        else { throw .malformed }
        let parts = decoded.split(separator: "|", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "c1" else { throw .unknown }
        let body = "\(parts[1])|\(parts[2])"
        let id = String(parts[4])
        guard String(parts[3]) == Self.check(body: body, id: id) else { throw .unknown }
        guard let page = Int(parts[1]), page >= 2 else { throw .unknown }
        let timestamp: Int64?
        if parts[2] == "-" {
            timestamp = nil
        } else if let value = Int64(parts[2]) {
            timestamp = value
        } else {
            throw .unknown
        }
        self.page = page
        self.after = ChatSortKey(timestamp: timestamp, id: id)
    }

    /// FNV-1a (64-bit) of the cursor's content, as 16 hex digits: enough to tell a cursor the
    /// simulator issued from one made up or damaged, which is all it is for.
    private static func check(body: String, id: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in "chatbridge-simulator|\(body)|\(id)".utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A parsed `GET /api/v1/chats` request.
struct ChatListRequest: Sendable, Equatable {
    static let defaultLimit = 100
    static let limitRange = 1...250

    var filter = ChatFilter()
    var limit = ChatListRequest.defaultLimit
    var cursor: ChatCursor?

    /// The 1-based index of the requested page in its cursor chain.
    var page: Int { cursor?.page ?? 1 }

    /// Reads the query parameters (already percent-decoded). Unknown parameters are ignored,
    /// as the real API does; for a repeated parameter the last value counts.
    ///
    /// - Throws: the 400 body naming the first bad parameter.
    static func parse(_ parameters: [(name: String, value: String)]) throws(UnipileErrorBody) -> ChatListRequest {
        var values: [String: String] = [:]
        for (name, value) in parameters { values[name] = value }
        var query = ChatListRequest()

        if let raw = values["limit"] {
            guard let limit = Int(raw), limitRange.contains(limit) else {
                throw UnipileErrorCatalog.invalidParameters(
                    "limit must be an integer between \(limitRange.lowerBound) and \(limitRange.upperBound).")
            }
            query.limit = limit
        }
        if let raw = values["unread"] {
            switch raw.lowercased() {
            case "true", "1": query.filter.unread = true
            case "false", "0": query.filter.unread = false
            default: throw UnipileErrorCatalog.invalidParameters("unread must be true or false.")
            }
        }
        for name in ["before", "after"] {
            guard let raw = values[name] else { continue }
            guard let milliseconds = ISOTimestamp.parse(raw, requireUTC: true) else {
                throw UnipileErrorCatalog.invalidParameters(
                    "\(name) must be an ISO 8601 UTC datetime (YYYY-MM-DDTHH:MM:SS.sssZ).")
            }
            if name == "before" { query.filter.before = milliseconds } else { query.filter.after = milliseconds }
        }
        if let raw = values["account_type"] {
            guard UnipileAccountType(rawValue: raw) != nil else {
                let allowed = UnipileAccountType.allCases.map(\.rawValue).joined(separator: ", ")
                throw UnipileErrorCatalog.invalidParameters("account_type must be one of \(allowed).")
            }
            query.filter.accountType = raw
        }
        if let raw = values["account_id"] {
            let ids = raw.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
            guard !ids.isEmpty else {
                throw UnipileErrorCatalog.invalidParameters("account_id must name at least one account.")
            }
            query.filter.accountIDs = Set(ids)
        }
        if let raw = values["cursor"] {
            do {
                query.cursor = try ChatCursor(decoding: raw)
            } catch {
                switch error {
                case .malformed: throw UnipileErrorCatalog.invalidParameters("cursor is malformed.")
                case .unknown: throw UnipileErrorCatalog.invalidParameters("cursor is unknown or expired.")
                }
            }
        }
        return query
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}
