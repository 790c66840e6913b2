/// Where a chat sits in the listing: newest `timestamp` first, chats without a (readable)
/// timestamp last, ties broken by `id` ascending. `a < b` means `a` is listed before `b`.
struct ChatSortKey: Comparable, Hashable, Sendable {
    /// Unix milliseconds of the chat's `timestamp`, `nil` when it is null or unreadable.
    var timestamp: Int64?
    var id: String

    static func < (a: ChatSortKey, b: ChatSortKey) -> Bool {
        switch (a.timestamp, b.timestamp) {
        case let (x?, y?) where x != y: return x > y
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a.id < b.id
        }
    }
}

/// Why a chat object was refused.
public enum ChatValidationError: Error, Equatable, CustomStringConvertible {
    case notAnObject
    case missingID
    case idMismatch(path: String, body: String)

    public var description: String {
        switch self {
        case .notAnObject: return "a chat must be a JSON object"
        case .missingID: return "a chat must have a non-empty string \"id\""
        case .idMismatch(let path, let body):
            return "the chat id cannot be changed (path names \"\(path)\", body names \"\(body)\")"
        }
    }
}

/// One chat as the simulator keeps it: its fields in order, and what listing needs of them
/// (sort key, filter values, and the JSON text, written once per change instead of once per
/// request).
struct StoredChat: Sendable {
    let fields: [SimulatorJSON.Member]
    let id: String
    let sortKey: ChatSortKey
    let accountType: String?
    let accountID: String?
    /// `unread_count` above zero (a missing or non-numeric count reads as zero).
    let isUnread: Bool
    /// The compact JSON object, exactly as served.
    let json: [UInt8]

    init(fields: [SimulatorJSON.Member]) throws(ChatValidationError) {
        guard let id = fields[field: "id"]?.stringValue, !id.isEmpty else { throw .missingID }
        self.init(fields: fields, validatedID: id)
    }

    private init(fields: [SimulatorJSON.Member], validatedID id: String) {
        self.fields = fields
        self.id = id
        let timestamp = fields[field: "timestamp"]?.stringValue.flatMap { ISOTimestamp.parse($0) }
        self.sortKey = ChatSortKey(timestamp: timestamp, id: id)
        self.accountType = fields[field: "account_type"]?.stringValue
        self.accountID = fields[field: "account_id"]?.stringValue
        self.isUnread = (fields[field: "unread_count"]?.doubleValue ?? 0) > 0
        self.json = SimulatorJSON.object(fields).serialized()
    }

    init(_ value: SimulatorJSON) throws(ChatValidationError) {
        guard let members = value.members else { throw .notAnObject }
        try self.init(fields: members)
    }

    /// A copy with each `(key, value)` of `changes` set (in place when present, appended
    /// otherwise). The id cannot be among them.
    func setting(_ changes: [(String, SimulatorJSON)]) -> StoredChat {
        var fields = self.fields
        for (key, value) in changes {
            precondition(key != "id", "the id of a stored chat does not change")
            fields.set(key, value)
        }
        return StoredChat(fields: fields, validatedID: id)
    }

    subscript(field key: String) -> SimulatorJSON? { fields[field: key] }
}

/// Which chats a request asks for: the filters of `GET /api/v1/chats`.
struct ChatFilter: Sendable, Equatable {
    /// `true`: unread chats only; `false`: read chats only.
    var unread: Bool?
    /// Only chats whose timestamp is before this (exclusive), in Unix milliseconds.
    var before: Int64?
    /// Only chats whose timestamp is after this (exclusive), in Unix milliseconds.
    var after: Int64?
    var accountType: String?
    var accountIDs: Set<String>?

    func matches(_ chat: StoredChat) -> Bool {
        if let unread, chat.isUnread != unread { return false }
        if before != nil || after != nil {
            guard let timestamp = chat.sortKey.timestamp else { return false }
            if let before, timestamp >= before { return false }
            if let after, timestamp <= after { return false }
        }
        if let accountType, chat.accountType != accountType { return false }
        if let accountIDs {
            guard let accountID = chat.accountID, accountIDs.contains(accountID) else { return false }
        }
        return true
    }
}

/// One page of a listing.
struct ChatPage: Sendable {
    var items: [StoredChat]
    /// Whether more matching chats follow the last item.
    var hasMore: Bool
}

/// The chats of the simulated workspace, kept in listing order.
///
/// A plain value: `SimulatorState` owns one and mutates it. Changes keep `order` sorted with a
/// binary search and one insertion, so no request ever sorts the workspace.
struct ChatWorkspace: Sendable {
    private(set) var chatsByID: [String: StoredChat] = [:]
    /// Every chat's sort key, in listing order.
    private(set) var order: [ChatSortKey] = []

    init() {}

    init(_ chats: [StoredChat]) {
        for chat in chats { chatsByID[chat.id] = chat }
        order = chatsByID.values.map(\.sortKey).sorted()
    }

    var count: Int { order.count }

    func chat(id: String) -> StoredChat? { chatsByID[id] }

    /// The chat at `index` of the listing order.
    func chat(atListingIndex index: Int) -> StoredChat { chatsByID[order[index].id]! }

    /// Adds `chat`, or replaces the chat with its id.
    mutating func put(_ chat: StoredChat) {
        if let old = chatsByID[chat.id] {
            order.remove(at: insertionIndex(of: old.sortKey))
        }
        chatsByID[chat.id] = chat
        order.insert(chat.sortKey, at: insertionIndex(of: chat.sortKey))
    }

    /// Removes the chat with `id`; returns it, or `nil` when there was none.
    @discardableResult
    mutating func remove(id: String) -> StoredChat? {
        guard let old = chatsByID.removeValue(forKey: id) else { return nil }
        order.remove(at: insertionIndex(of: old.sortKey))
        return old
    }

    /// The first index whose key is not listed before `key` (binary search).
    private func insertionIndex(of key: ChatSortKey) -> Int {
        var low = 0
        var high = order.count
        while low < high {
            let mid = (low + high) / 2
            if order[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The first index listed strictly after `key`, whether or not a chat with `key` exists.
    private func indexListed(after key: ChatSortKey) -> Int {
        var low = 0
        var high = order.count
        while low < high {
            let mid = (low + high) / 2
            if order[mid] < key || order[mid] == key { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Up to `limit` chats matching `filter`, continuing after the sort position `after`
    /// (from the start when `nil`).
    func page(filter: ChatFilter, after: ChatSortKey?, limit: Int) -> ChatPage {
        var index = after.map(indexListed(after:)) ?? 0
        var items: [StoredChat] = []
        items.reserveCapacity(min(limit, order.count))
        while index < order.count {
            let chat = chatsByID[order[index].id]!
            index += 1
            guard filter.matches(chat) else { continue }
            if items.count == limit { return ChatPage(items: items, hasMore: true) }
            items.append(chat)
        }
        return ChatPage(items: items, hasMore: false)
    }
}
