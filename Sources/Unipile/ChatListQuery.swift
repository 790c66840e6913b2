import ChatBridgeConfig
/// The filters and page size of a "List all chats" poll, as the API's query parameters.
///
/// ```swift
/// let query = ChatListQuery(pageSize: 250, accountType: "LINKEDIN", accountIDs: ["acc_1", "acc_2"], unread: true)
/// query.percentEncodedQuery(cursor: "a/b+c")
/// // limit=250&account_type=LINKEDIN&account_id=acc_1,acc_2&unread=true&cursor=a%2Fb%2Bc
/// ```
package struct ChatListQuery: Sendable, Hashable {
    /// The API's `limit`, 1...250.
    package var pageSize: Int
    /// The `account_type` filter (`LINKEDIN`, `WHATSAPP`, ...), or `nil` for all.
    package var accountType: String?
    /// The `account_id` filter, sent comma-separated; empty for all accounts.
    package var accountIDs: [String]
    /// The `unread` filter: `true` unread chats only, `false` read chats only.
    package var unread: Bool?
    /// The `before` filter: an ISO 8601 UTC date, passed as given.
    package var before: String?
    /// The `after` filter: an ISO 8601 UTC date, passed as given.
    package var after: String?

    package init(
        pageSize: Int = 250, accountType: String? = nil, accountIDs: [String] = [], unread: Bool? = nil,
        before: String? = nil, after: String? = nil
    ) {
        self.pageSize = pageSize
        self.accountType = accountType
        self.accountIDs = accountIDs
        self.unread = unread
        self.before = before
        self.after = after
    }

    /// The query of a configured source.
    package init(source: SourceConfiguration) {
        self.init(
            pageSize: source.pageSize, accountType: source.accountType?.rawValue,
            accountIDs: source.accountIDs, unread: source.unread)
    }

    /// The query parameters, in a fixed order, not yet encoded.
    package func parameters(cursor: String?) -> [(name: String, value: String)] {
        var parameters: [(name: String, value: String)] = [("limit", String(pageSize))]
        if let accountType { parameters.append(("account_type", accountType)) }
        if !accountIDs.isEmpty { parameters.append(("account_id", accountIDs.joined(separator: ","))) }
        if let unread { parameters.append(("unread", unread ? "true" : "false")) }
        if let before { parameters.append(("before", before)) }
        if let after { parameters.append(("after", after)) }
        if let cursor { parameters.append(("cursor", cursor)) }
        return parameters
    }

    /// The URL query (without `?`): every byte outside RFC 3986's unreserved set is
    /// percent-encoded, except the commas that separate account ids.
    package func percentEncodedQuery(cursor: String?) -> String {
        parameters(cursor: cursor).map { parameter in
            let value: String
            if parameter.name == "account_id" {
                value = accountIDs.map(Self.percentEncode).joined(separator: ",")
            } else {
                value = Self.percentEncode(parameter.value)
            }
            return parameter.name + "=" + value
        }.joined(separator: "&")
    }

    /// `text` with every byte outside `A-Z a-z 0-9 - . _ ~` as `%XX`.
    package static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
