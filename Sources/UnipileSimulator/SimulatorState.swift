import Foundation
/// An answer the simulator has decided on, before it goes over HTTP.
struct SimulatedResponse: Sendable {
    var status: Int
    var body: [UInt8]
    /// Wait this long before answering (an injected delay).
    var delay: Duration? = nil
    /// Seconds for a `Retry-After` header.
    var retryAfter: Int? = nil
}

/// Everything the simulator knows: the workspace of chats, the pending faults and the
/// request statistics. Shared by the HTTP handlers, the `--change-every` timer and tests.
///
/// Tests can drive it in-process, with the same effects as the control API:
///
/// ```swift
/// try await simulator.state.upsert(chatJSON: #"{"id":"c1","unread_count":2,"x-extra":[1]}"#)
/// try await simulator.state.patch(id: "c1", fieldsJSON: #"{"unread_count":0}"#)
/// await simulator.state.addFault(.error(status: 503, count: 2, page: 3))
/// ```
public actor SimulatorState {
    private let apiKey: String
    private var workspace: ChatWorkspace
    private var changes: ChangeGenerator
    private var faults: [SimulatedFault] = []
    private var statistics = SimulatorStats()
    /// The seed of the current workspace (changed by ``reset(chats:seed:)``).
    public private(set) var seed: UInt64

    /// Most chats a reset may ask for.
    public static let maximumChats = 1_000_000

    /// A workspace of `chats` generated chats, fixed by `seed`.
    ///
    /// - Parameter clock: When given, the newest chat's `timestamp` is its time at
    ///   generation (and at each reset), older ones at the seed's offsets before it, so that
    ///   `timestamp(chat.timestamp) > now - duration("1h")` matches recent chats. Without
    ///   it, times are fixed (the newest at 2025-11-23T12:13:20Z): byte-identical pages
    ///   for tests and benchmarks.
    public init(apiKey: String, chats: Int = 200, seed: UInt64 = 1, clock: (@Sendable () -> Date)? = nil) {
        self.apiKey = apiKey
        self.seed = seed
        self.clock = clock
        let newest = Self.newestChatTime(clock)
        let (workspace, factory) = WorkspaceGenerator.generate(
            chats: min(max(chats, 0), Self.maximumChats), seed: seed, newest: newest)
        self.workspace = workspace
        self.changes = ChangeGenerator(seed: seed, factory: factory, clock: newest)
    }

    /// The clock generated times follow, or `nil` for fixed times.
    private let clock: (@Sendable () -> Date)?

    private static func newestChatTime(_ clock: (@Sendable () -> Date)?) -> Int64 {
        guard let clock else { return ChatFactory.baseTime }
        return milliseconds(clock)
    }

    // MARK: - The API

    /// Answers `GET /api/v1/chats`: authentication, parameters, faults, then the page.
    ///
    /// - Parameters:
    ///   - apiKey: the request's `X-API-KEY` header, `nil` when absent.
    ///   - parameters: the percent-decoded query parameters, in order.
    func listChats(apiKey presented: String?, parameters: [(name: String, value: String)]) -> SimulatedResponse {
        let response = decideListResponse(apiKey: presented, parameters: parameters)
        statistics.requests += 1
        statistics.byStatus[response.status, default: 0] += 1
        return response
    }

    private func decideListResponse(apiKey presented: String?, parameters: [(name: String, value: String)]) -> SimulatedResponse {
        guard let presented else {
            return Self.errorResponse(UnipileErrorCatalog.body(status: 401, type: "errors/missing_credentials"))
        }
        guard Self.constantTimeEquals(presented, apiKey) else {
            return Self.errorResponse(UnipileErrorCatalog.body(status: 401, type: "errors/invalid_credentials"))
        }
        let query: ChatListRequest
        do { query = try ChatListRequest.parse(parameters) } catch { return Self.errorResponse(error) }

        let fault = takeFault(page: query.page)
        if case .error(let body)? = fault?.failure {
            var response = Self.errorResponse(body)
            response.delay = fault?.delay
            response.retryAfter = fault?.retryAfterSeconds
            return response
        }
        var response = SimulatedResponse(status: 200, body: pageBody(for: query), delay: fault?.delay)
        if fault?.failure == .malformedBody {
            response.body = Array(response.body.prefix(response.body.count / 2))
        }
        return response
    }

    /// The next fault matching `page`, used up by one; `nil` when none matches.
    private func takeFault(page: Int) -> SimulatedFault? {
        guard let index = faults.firstIndex(where: { $0.matches(page: page) }) else { return nil }
        let fault = faults[index]
        if fault.count <= 1 { faults.remove(at: index) } else { faults[index].count -= 1 }
        return fault
    }

    /// `{"object":"ChatList","items":[...],"cursor":...}` from each chat's cached JSON.
    private func pageBody(for query: ChatListRequest) -> [UInt8] {
        let page = workspace.page(filter: query.filter, after: query.cursor?.after, limit: query.limit)
        var body: [UInt8] = []
        body.reserveCapacity(page.items.reduce(64) { $0 + $1.json.count + 1 })
        body.append(contentsOf: #"{"object":"ChatList","items":["#.utf8)
        for (index, chat) in page.items.enumerated() {
            if index > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: chat.json)
        }
        body.append(contentsOf: #"],"cursor":"#.utf8)
        if page.hasMore, let last = page.items.last {
            SimulatorJSON.writeString(ChatCursor(page: query.page + 1, after: last.sortKey).encoded, into: &body)
        } else {
            body.append(contentsOf: "null".utf8)
        }
        body.append(UInt8(ascii: "}"))
        return body
    }

    static func errorResponse(_ body: UnipileErrorBody) -> SimulatedResponse {
        SimulatedResponse(status: body.status, body: body.json)
    }

    /// Compares keys without stopping at the first difference, so response time does not
    /// tell how much of a guessed key was right.
    private static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    // MARK: - Chats

    /// Adds a chat, or replaces the chat with the same `id`. The object must have a non-empty
    /// string `id`; every other field, known or not, is kept and served back as given.
    public func upsert(chatJSON: String) throws(SimulatorControlError) {
        _ = try upsert(chatJSON: Array(chatJSON.utf8))
    }

    /// As ``upsert(chatJSON:)-(String)``; returns the stored chat's id.
    func upsert(chatJSON bytes: [UInt8]) throws(SimulatorControlError) -> String {
        let value: SimulatorJSON
        do { value = try SimulatorJSON.parse(bytes) } catch { throw .invalidJSON(error.description) }
        let chat: StoredChat
        do { chat = try StoredChat(value) } catch { throw .invalidChat(error) }
        workspace.put(chat)
        return chat.id
    }

    /// Merges the fields of a JSON object into the chat `id`: present fields change in place,
    /// new ones are appended, `null` values set the field to `null`. An `id` field, if given,
    /// must be the chat's own.
    public func patch(id: String, fieldsJSON: String) throws(SimulatorControlError) {
        try patch(id: id, fieldsJSON: Array(fieldsJSON.utf8))
    }

    func patch(id: String, fieldsJSON bytes: [UInt8]) throws(SimulatorControlError) {
        guard let chat = workspace.chat(id: id) else { throw .chatNotFound(id: id) }
        let value: SimulatorJSON
        do { value = try SimulatorJSON.parse(bytes) } catch { throw .invalidJSON(error.description) }
        guard let members = value.members else { throw .invalidChat(.notAnObject) }
        var changes: [(String, SimulatorJSON)] = []
        for member in members {
            if member.key == "id" {
                guard member.value.stringValue == id else {
                    throw .invalidChat(.idMismatch(path: id, body: member.value.stringValue ?? "\(member.value)"))
                }
                continue
            }
            changes.append((member.key, member.value))
        }
        workspace.put(chat.setting(changes))
    }

    /// Removes the chat `id`; `false` when there was none.
    @discardableResult
    public func remove(id: String) -> Bool {
        workspace.remove(id: id) != nil
    }

    /// The chat `id` as the API would serve it, or `nil`.
    public func chatJSON(id: String) -> String? {
        workspace.chat(id: id).map { String(decoding: $0.json, as: UTF8.self) }
    }

    func chatJSONBytes(id: String) -> [UInt8]? { workspace.chat(id: id)?.json }

    /// Every chat id, in listing order (newest first).
    public func chatIDs() -> [String] { workspace.order.map(\.id) }

    public var chatCount: Int { workspace.count }

    // MARK: - Faults

    /// Queues `fault`; it affects the next `fault.count` requests that match it. Faults are
    /// tried in the order they were added.
    public func addFault(_ fault: SimulatedFault) {
        faults.append(fault)
    }

    /// Drops every pending fault.
    public func clearFaults() {
        faults.removeAll()
    }

    /// Faults not yet used up, with their remaining counts.
    public var pendingFaults: [SimulatedFault] { faults }

    // MARK: - Workspace

    /// Replaces the workspace with `chats` freshly generated chats from `seed`, and clears
    /// faults and statistics: the simulator is as if just started.
    public func reset(chats: Int, seed: UInt64) {
        let newest = Self.newestChatTime(clock)
        let (workspace, factory) = WorkspaceGenerator.generate(
            chats: min(max(chats, 0), Self.maximumChats), seed: seed, newest: newest)
        self.workspace = workspace
        self.changes = ChangeGenerator(seed: seed, factory: factory, clock: newest)
        self.seed = seed
        faults.removeAll()
        statistics = SimulatorStats()
    }

    /// Requests to `GET /api/v1/chats` answered so far, by status.
    public func stats() -> SimulatorStats { statistics }

    /// Makes `count` random, plausible changes (new messages, reads, archiving, pinning,
    /// muting, renames, additions, removals), deterministic for the workspace's seed.
    @discardableResult
    public func applyRandomChanges(count: Int) -> [SimulatedChange] {
        changes.apply(count: count, to: &workspace, now: clock.map(Self.milliseconds))
    }

    /// One `--change-every` tick: one to three random changes.
    func applyTick() -> [SimulatedChange] {
        let count = changes.changesPerTick()
        return changes.apply(count: count, to: &workspace, now: clock.map(Self.milliseconds))
    }

    /// Unix milliseconds of `clock`'s time now.
    private static func milliseconds(_ clock: @Sendable () -> Date) -> Int64 {
        Int64((clock().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
