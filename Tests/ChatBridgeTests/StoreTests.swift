import Foundation
import GRDB
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

@Suite("SQLite store: snapshots, events and the outbox")
struct StoreTests {
    @Test func baselineIsSilentThenChangesBecomeEvents() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("state/chatbridge.sqlite"))
        let driver = PollDriver(store: store, source: "main")
        let baseline = try await driver.poll([driver.chat("a", #""unread_count":0"#), driver.chat("b", #""unread_count":1"#)])
        #expect(baseline.eventCount == 0)
        #expect(try await store.loadSnapshotIndex(source: "main").entries.count == 2)

        let unchanged = try await driver.poll([driver.chat("a", #""unread_count":0"#), driver.chat("b", #""unread_count":1"#)])
        #expect(unchanged.eventCount == 0)
        #expect(unchanged.chatWrites == 0, "an unchanged poll writes no chat rows")

        let changed = try await driver.poll([driver.chat("a", #""unread_count":3"#), driver.chat("b", #""unread_count":1"#)])
        #expect(changed.eventCount == 1)
        #expect(changed.deliveryCount == 1)
        let events = try await driver.events()
        #expect(events.count == 1)
        #expect(events[0]["type"] == .string("chat.changed"))
        #expect(events[0]["kinds"] == .array([.string("unread.increased")]))
        #expect(events[0]["changes"]?["unread_count"]?["from"] == .int(0))
        #expect(events[0]["previous"]?["unread_count"] == .int(0))
        #expect(events[0]["chat"]?["unread_count"] == .int(3))
        #expect(events[0]["rule"] == nil)
    }

    @Test func baselineEmitMakesEveryChatAdded() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("s.sqlite"))
        var driver = PollDriver(store: store, source: "main")
        driver.emitBaseline = true
        let applied = try await driver.poll([driver.chat("a"), driver.chat("b")])
        #expect(applied.eventCount == 2)
        #expect(try await driver.events().map { $0["type"] } == [.string("chat.added"), .string("chat.added")])
    }

    @Test func removalOnlyAfterTwoCompleteMisses() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("s.sqlite"))
        let driver = PollDriver(store: store, source: "main")
        let all = ["a", "b", "c", "d"].map { driver.chat($0) }
        try await driver.poll(all)
        try await driver.poll(Array(all.dropLast()))  // d missed once
        #expect(try await driver.events().isEmpty)
        try await driver.poll(all)  // d back: the counter resets
        try await driver.poll(Array(all.dropLast()))
        #expect(try await driver.events().isEmpty)
        try await driver.poll(Array(all.dropLast()))  // second miss in a row
        let events = try await driver.events()
        #expect(events.count == 1)
        #expect(events[0]["type"] == .string("chat.removed"))
        #expect(events[0]["chat_id"] == .string("d"))
        #expect(events[0]["chat"]?["id"] == .string("d"), "a removed chat carries its last stored object")
        #expect(try await store.loadSnapshotIndex(source: "main").entries["d"] == nil)
    }

    @Test func chatListedTwiceCountsOnce() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("s.sqlite"))
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a", #""unread_count":0"#)])
        try await driver.poll([driver.chat("a", #""unread_count":1"#), driver.chat("a", #""unread_count":1"#)])
        let events = try await driver.events()
        #expect(events.count == 1)
    }

    @Test func filterChangeStartsANewBaseline() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("s.sqlite"))
        var driver = PollDriver(store: store, source: "main")
        try await driver.poll(["a", "b", "c"].map { driver.chat($0) })
        driver.fingerprint = #"{"account_ids":[],"account_type":"LINKEDIN","unread":null}"#
        try await driver.poll([driver.chat("a")])
        try await driver.poll([driver.chat("a")])
        #expect(try await driver.events().isEmpty, "no chat.removed for chats outside the new filter")
        #expect(try await store.loadSnapshotIndex(source: "main").entries.keys.sorted() == ["a"])
    }

    @Test func failedPollChangesNothingAndAccountErrorIsOncePerOutage() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("s.sqlite")
        var store = try SQLiteStore(path: path)
        var driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a")])
        let before = try await store.snapshotChats(source: "main").map(\.chat)
        let error: JSONValue = [
            "status": 401, "type": "errors/disconnected_account", "title": "Disconnected", "detail": "x",
        ]
        func fail() async throws -> PollApplication {
            try await store.stage(source: "main", chats: [StagedChat(
                id: "zzz", accountID: nil, accountType: nil, raw: Data("{}".utf8), fingerprint: 1)])
            return try await store.recordFailedPoll(
                FailedPoll(source: "main", filterFingerprint: driver.fingerprint, startedAt: Date(), finishedAt: Date(),
                           pages: 1, items: 0, error: "HTTP 401", accountError: error),
                router: everythingToStdout)
        }
        #expect(try await fail().eventCount == 1)
        #expect(try await fail().eventCount == 0, "one account.error per outage")
        // across a restart too
        store = try SQLiteStore(path: path)
        driver = PollDriver(store: store, source: "main")
        #expect(try await fail().eventCount == 0)
        #expect(try await store.snapshotChats(source: "main").map(\.chat) == before, "snapshot unchanged")
        #expect(try await store.sourceRecord("main")?.consecutiveFailures == 3)

        let recovered = try await driver.poll([driver.chat("a")])
        #expect(recovered.eventCount == 1)
        let types = try await driver.events().map { $0["type"]?.stringValue }
        #expect(types == ["account.error", "account.recovered"])
        let last = try await driver.events().last!
        #expect(last["error"]?["type"] == .string("errors/disconnected_account"))
    }

    @Test func eventsAndOutboxRowsAreWrittenTogether() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("s.sqlite"))
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a", #""unread_count":0"#)])
        let router: EventRouter = { _ in
            [OutboxRoute(rule: "r1", sinks: ["stdout", "hook"]), OutboxRoute(rule: "r2", sinks: ["stdout"])]
        }
        let applied = try await driver.poll([driver.chat("a", #""unread_count":1"#)], router: router)
        #expect(applied.deliveryCount == 3)
        let rows = try await store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT e.id, d.rule, d.sink, d.status FROM deliveries d JOIN events e ON e.id = d.event_id ORDER BY d.id")
        }
        #expect(rows.map { $0["sink"] as String } == ["stdout", "hook", "stdout"])
        #expect(rows.allSatisfy { ($0["status"] as String) == "pending" })
    }

    @Test func throttleSuppressesWithinTheWindowAcrossRestarts() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("s.sqlite")
        var store = try SQLiteStore(path: path)
        var driver = PollDriver(store: store, source: "main")
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["stdout"], throttle: .seconds(3600))] }
        try await driver.poll([driver.chat("a", #""unread_count":0"#)], router: router)
        #expect(try await driver.poll([driver.chat("a", #""unread_count":1"#)], router: router).deliveryCount == 1)
        store = try SQLiteStore(path: path)
        driver = PollDriver(store: store, source: "main")
        let second = try await driver.poll([driver.chat("a", #""unread_count":2"#)], router: router)
        #expect(second.eventCount == 1, "the event is still stored")
        #expect(second.deliveryCount == 0, "but not delivered again within the window")
    }

    @Test func unreadableStorePathIsAClearError() throws {
        let dir = TemporaryDirectory()
        let blocker = dir.file("file")
        FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        #expect {
            try SQLiteStore(path: blocker + "/sub/chatbridge.sqlite")
        } throws: { error in
            let text = "\(error)"
            return text.contains(blocker) && text.contains("cannot create its folder")
        }
    }
}
