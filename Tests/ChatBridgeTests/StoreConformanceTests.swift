import Foundation
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
@testable import StorePostgres
@testable import Unipile

@Suite("Store conformance: snapshots, events and the outbox, on every store")
struct StoreConformanceTests {
    @Test(arguments: StoreKind.all) func baselineIsSilentThenChangesBecomeEvents(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
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

    @Test(arguments: StoreKind.all) func baselineEmitMakesEveryChatAdded(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        var driver = PollDriver(store: store, source: "main")
        driver.emitBaseline = true
        let applied = try await driver.poll([driver.chat("a"), driver.chat("b")])
        #expect(applied.eventCount == 2)
        #expect(try await driver.events().map { $0["type"] } == [.string("chat.added"), .string("chat.added")])
    }

    /// A baseline staged page by page, with a chat listed on both pages: the snapshot and
    /// the chat.added events have each chat once, with its later copy, and the others in
    /// listing order; the session counts the chats.
    @Test(arguments: StoreKind.all) func aBaselineOfSeveralPagesKeepsTheLaterCopyOfAChatListedTwice(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        var driver = PollDriver(store: store, source: "main")
        driver.emitBaseline = true
        func staged(_ id: String, unread: Int) throws -> StagedChat {
            let text = driver.chat(id, #""unread_count":\#(unread)"#)
            return StagedChat(
                id: id, accountID: "acc", accountType: "LINKEDIN", raw: Data(text.utf8),
                fingerprint: ChatFingerprint.fingerprint(of: Array(text.utf8), seed: store.fingerprintSeed))
        }
        var session = try await PollSession.begin(store: store, source: "main", filterFingerprint: driver.fingerprint)
        #expect(session.isBaseline)
        try await session.stage([staged("a", unread: 0), staged("b", unread: 1)], now: Date())
        try await session.stage([staged("c", unread: 0), staged("b", unread: 2), staged("d", unread: 0)], now: Date())
        let applied = try await session.commit(
            CompletedPoll(
                source: "main", filterFingerprint: driver.fingerprint, isBaseline: true, emitBaseline: true,
                startedAt: Date(), finishedAt: Date(), pages: 2, items: 5, reappeared: [],
                absences: SnapshotRules.planAbsences(knownCount: 0, absent: [], suspiciousStreak: 0)),
            router: { _ in [] })
        #expect(session.baselineChatCount == 4)
        #expect(applied.eventCount == 4)
        let added = try await driver.events().map { $0["chat"]!["id"]!.stringValue! + "=" + $0["chat"]!["unread_count"]!.compactString }
        #expect(added.filter { !$0.hasPrefix("b=") } == ["a=0", "c=0", "d=0"], "in listing order")
        #expect(added.filter { $0.hasPrefix("b=") } == ["b=2"], "the later copy, once")
        let snapshot = try await store.snapshotChats(source: "main").map { $0.chat["id"]!.stringValue! + "=" + $0.chat["unread_count"]!.compactString }
        #expect(Set(snapshot) == ["a=0", "b=2", "c=0", "d=0"] && snapshot.count == 4)
        let index = try await store.loadSnapshotIndex(source: "main")
        #expect(index.count == 4)
        #expect(index["b"]?.fingerprint == (try staged("b", unread: 2)).fingerprint)
    }

    @Test(arguments: StoreKind.all) func removalOnlyAfterTwoCompleteMisses(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
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

    @Test(arguments: StoreKind.all) func chatListedTwiceCountsOnce(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a", #""unread_count":0"#)])
        try await driver.poll([driver.chat("a", #""unread_count":1"#), driver.chat("a", #""unread_count":1"#)])
        let events = try await driver.events()
        #expect(events.count == 1)
    }

    @Test(arguments: StoreKind.all) func filterChangeStartsANewBaseline(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        var driver = PollDriver(store: store, source: "main")
        try await driver.poll(["a", "b", "c"].map { driver.chat($0) })
        driver.fingerprint = #"{"account_ids":[],"account_type":"LINKEDIN","unread":null}"#
        try await driver.poll([driver.chat("a")])
        try await driver.poll([driver.chat("a")])
        #expect(try await driver.events().isEmpty, "no chat.removed for chats outside the new filter")
        #expect(try await store.loadSnapshotIndex(source: "main").entries.keys.sorted() == ["a"])
    }

    @Test(arguments: StoreKind.all) func failedPollChangesNothingAndAccountErrorIsOncePerOutage(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        var store = try await kind.open(dir.path)
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
        store = try await kind.open(dir.path)
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

    /// A poll stopped by a shutdown is recorded, and is not a failure: `chatbridge status`
    /// after a restart must not report the source as failing.
    @Test(arguments: StoreKind.all) func aStoppedPollLeavesTheSourcesHealthAsItWas(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a")])
        let before = try #require(try await store.sourceRecord("main"))
        let stoppedAt = Date().addingTimeInterval(5)
        _ = try await store.recordFailedPoll(
            FailedPoll(source: "main", filterFingerprint: driver.fingerprint, startedAt: Date(), finishedAt: stoppedAt,
                       pages: 1, items: 0, error: "stopped", wasStopped: true),
            router: everythingToStdout)
        let after = try #require(try await store.sourceRecord("main"))
        #expect(after.lastOutcome == before.lastOutcome && after.lastOutcome != "failed")
        #expect(after.consecutiveFailures == 0 && after.lastError == nil && after.failingSince == nil)
        #expect(after.lastSuccessAt == before.lastSuccessAt)
        #expect(after.lastPollAt == before.lastPollAt, "the last poll is still the one whose outcome is shown")
        let configuration = try ChatBridgeConfiguration.parse(
            yaml: "sources:\n  - {name: main, url: \"http://127.0.0.1:1\", api_key: k}\n", file: "c.yaml", environment: [:])
        let report = StatusReport.make(configuration: configuration, records: ["main": after], counts: [:], now: stoppedAt)
        #expect(!report.needsAttention, "\(report.sources)")
    }

    /// A dead delivery replayed and delivered leaves nothing for `status` to call
    /// attention to; one not replayed still does. (SQLite keeps the dead row in the
    /// history beside the new one; PostgreSQL's replay reuses the row.)
    @Test(arguments: StoreKind.all) func aDeadDeliveryReplayedAndDeliveredNeedsNoAttention(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        var driver = PollDriver(store: store, source: "main")
        driver.emitBaseline = true
        try await driver.poll([driver.chat("a"), driver.chat("b")])
        let rows = try await store.dueDeliveries(sink: "stdout", now: Date(), excluding: [], limit: 10)
        #expect(rows.count == 2)
        for row in rows { try await store.record(.dead(status: 400, error: "refused"), deliveryID: row.id, attempts: 1, at: Date()) }
        let since = Date().addingTimeInterval(-3600)
        #expect(try await store.deliveryCounts(now: Date(), recentSince: since)["stdout"]?.recentlyDead == 2)
        let replayedEvent = try #require(try await store.deliveries(status: "dead", sink: nil, eventID: nil, limit: nil).first?.eventID)
        #expect(try await store.replay(eventID: replayedEvent, sink: nil, now: Date()) == 1)
        let again = try #require(try await store.dueDeliveries(sink: "stdout", now: Date(), excluding: [], limit: 10).first)
        try await store.record(.delivered(status: nil), deliveryID: again.id, attempts: 1, at: Date())
        let counts = try #require(try await store.deliveryCounts(now: Date(), recentSince: since)["stdout"])
        #expect(counts.recentlyDead == 1, "the replayed one was delivered since")
    }

    @Test(arguments: StoreKind.all) func eventsAndOutboxRowsAreWrittenTogether(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a", #""unread_count":0"#)])
        let router: EventRouter = { _ in
            [OutboxRoute(rule: "r1", sinks: ["stdout", "hook"]), OutboxRoute(rule: "r2", sinks: ["stdout"])]
        }
        let applied = try await driver.poll([driver.chat("a", #""unread_count":1"#)], router: router)
        #expect(applied.deliveryCount == 3)
        let event = try #require(try await driver.events().last?["id"]?.stringValue)
        let rows = try await store.deliveries(eventID: event)
        #expect(rows.map(\.sink) == ["stdout", "hook", "stdout"])
        #expect(rows.map(\.rule) == ["r1", "r1", "r2"])
        #expect(rows.allSatisfy { $0.status == "pending" })
    }

    @Test(arguments: StoreKind.all) func throttleSuppressesWithinTheWindowAcrossRestarts(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        var store = try await kind.open(dir.path)
        var driver = PollDriver(store: store, source: "main")
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["stdout"], throttle: .seconds(3600))] }
        try await driver.poll([driver.chat("a", #""unread_count":0"#)], router: router)
        #expect(try await driver.poll([driver.chat("a", #""unread_count":1"#)], router: router).deliveryCount == 1)
        store = try await kind.open(dir.path)
        driver = PollDriver(store: store, source: "main")
        let second = try await driver.poll([driver.chat("a", #""unread_count":2"#)], router: router)
        #expect(second.eventCount == 1, "the event is still stored")
        #expect(second.deliveryCount == 0, "but not delivered again within the window")
    }

    @Test(arguments: StoreKind.all) func abandonedPollLeavesNothing(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a", #""unread_count":0"#)])
        // A poll that staged a change and a new chat, then failed.
        var session = try await PollSession.begin(store: store, source: "main", filterFingerprint: driver.fingerprint)
        try await session.stage([
            StagedChat(id: "a", accountID: "acc", accountType: "LINKEDIN", raw: Data(driver.chat("a", #""unread_count":5"#).utf8), fingerprint: 7),
            StagedChat(id: "n", accountID: "acc", accountType: "LINKEDIN", raw: Data(driver.chat("n").utf8), fingerprint: 8),
        ], now: Date())
        _ = try await session.fail(
            FailedPoll(source: "main", filterFingerprint: driver.fingerprint, startedAt: Date(), finishedAt: Date(),
                       pages: 1, items: 2, error: "HTTP 500"),
            router: everythingToStdout)
        #expect(try await driver.events().isEmpty)
        #expect(try await store.loadSnapshotIndex(source: "main").entries.keys.sorted() == ["a"])
        // The next complete poll sees the unchanged chat as unchanged: nothing staged survived.
        let next = try await driver.poll([driver.chat("a", #""unread_count":0"#)])
        #expect(next.eventCount == 0)
        #expect(next.chatWrites == 0)
        #expect(try await store.sourceRecord("main")?.lastOutcome == "complete")
    }

    @Test(arguments: StoreKind.all) func changesStagedInSeveralBatchesAreAllAppliedInListingOrder(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        let ids = ["c", "a", "d", "b", "e"]
        try await driver.poll(ids.map { driver.chat($0, #""unread_count":0"#) })
        // Batches of 250 bytes: the first three chats (about 100 bytes each) are set aside
        // in the store while the poll goes on, the last two when it commits.
        var session = try await PollSession.begin(
            store: store, source: "main", filterFingerprint: driver.fingerprint, stagingBatchBytes: 250)
        for id in ids {
            let text = driver.chat(id, #""unread_count":1"#)
            try await session.stage(
                [StagedChat(id: id, accountID: "acc", accountType: "LINKEDIN", raw: Data(text.utf8),
                            fingerprint: ChatFingerprint.fingerprint(of: Array(text.utf8), seed: store.fingerprintSeed))],
                now: Date())
        }
        let applied = try await session.commit(
            CompletedPoll(
                source: "main", filterFingerprint: driver.fingerprint, isBaseline: false, emitBaseline: false,
                startedAt: Date(), finishedAt: Date(), pages: 5, items: 5, reappeared: [],
                absences: .init(removals: [], stillMissing: [], suspicious: false, suspiciousStreak: 0)),
            router: everythingToStdout)
        #expect(applied.eventCount == 5)
        #expect(try await driver.events().map { $0["chat_id"] } == ids.map { .string($0) })
        #expect(try await driver.poll(ids.map { driver.chat($0, #""unread_count":1"#) }).chatWrites == 0,
                "every staged fingerprint was stored")
    }

    @Test(arguments: StoreKind.all) func aCommitThatFailsHalfwayStoresNothing(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("a", #""unread_count":0"#), driver.chat("b", #""unread_count":0"#)])
        var session = try await PollSession.begin(store: store, source: "main", filterFingerprint: driver.fingerprint)
        // "a" changed (an event), then "b" whose bytes are not JSON: the apply fails on it.
        try await session.stage([
            StagedChat(id: "a", accountID: "acc", accountType: "LINKEDIN", raw: Data(driver.chat("a", #""unread_count":2"#).utf8), fingerprint: 7),
            StagedChat(id: "b", accountID: "acc", accountType: "LINKEDIN", raw: Data("{not json".utf8), fingerprint: 8),
        ], now: Date())
        let poll = CompletedPoll(
            source: "main", filterFingerprint: driver.fingerprint, isBaseline: false, emitBaseline: false,
            startedAt: Date(), finishedAt: Date(), pages: 1, items: 2, reappeared: [],
            absences: SnapshotRules.planAbsences(knownCount: 2, absent: [], suspiciousStreak: 0))
        await #expect(throws: (any Error).self) { try await session.commit(poll, router: everythingToStdout) }
        #expect(try await driver.events().isEmpty, "no event of the failed commit is stored")
        #expect(try await store.deliveries().isEmpty, "nor any outbox row")
        // The change is still a change for the next poll.
        let next = try await driver.poll([driver.chat("a", #""unread_count":2"#), driver.chat("b", #""unread_count":0"#)])
        #expect(next.eventCount == 1)
    }

    @Test(arguments: StoreKind.all) func outboxKeepsOrderPerChatAndSinkAndRecordsOutcomes(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["hook"])] }
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        try await driver.poll([driver.chat("a", #""unread_count":0"#), driver.chat("b", #""unread_count":0"#)], at: t0)
        for (step, count) in [1, 2].enumerated() {
            try await driver.poll(
                [driver.chat("a", #""unread_count":\#(count)"#), driver.chat("b", #""unread_count":\#(count)"#)],
                at: t0.addingTimeInterval(Double(step + 1)), router: router)
        }
        let now = t0.addingTimeInterval(10)
        // Two rows per chat: only the oldest of each chat is due.
        let due = try await store.dueDeliveries(sink: "hook", now: now, excluding: [], limit: 10)
        #expect(due.count == 2)
        #expect(Set(due.map { try! JSONValue.parse($0.eventJSON)["chat_id"]!.stringValue! }) == ["a", "b"])
        #expect(due.allSatisfy { $0.attempts == 0 && $0.rule == "r" })
        #expect(try await store.dueDeliveries(sink: "other", now: now, excluding: [], limit: 10).isEmpty)
        let (first, second) = (due[0], due[1])
        // One fails and waits; the other is delivered, which lets its chat's next row come.
        try await store.record([
            DeliveryUpdate(deliveryID: first.id, change: .attempted(.retry(notBefore: now.addingTimeInterval(60), status: 500, error: "HTTP 500"), attempts: 1), at: now),
            DeliveryUpdate(deliveryID: second.id, change: .attempted(.delivered(status: 200), attempts: 1), at: now),
        ])
        let next = try await store.dueDeliveries(sink: "hook", now: now, excluding: [], limit: 10)
        #expect(next.count == 1, "the retrying chat holds back its later row")
        #expect(next.first?.eventID != first.eventID && next.first?.eventID != second.eventID)
        #expect(try #require(try await store.nextAttemptDate(sink: "hook")) <= now, "a row is due already")
        let later = try await store.dueDeliveries(sink: "hook", now: now.addingTimeInterval(61), excluding: [next[0].id], limit: 10)
        #expect(later.map(\.id) == [first.id], "retried when due, in flight rows skipped")
        try await store.record([DeliveryUpdate(deliveryID: first.id, change: .attempted(.dead(status: 410, error: "HTTP 410"), attempts: 2), at: now)])
        let dead = try await store.deliveries(status: "dead")
        #expect(dead.map(\.id) == [first.id])
        #expect(dead.first?.lastStatus == 410)
        #expect(try await store.deliveries(status: "delivered").map(\.id) == [second.id])
    }

    @Test(arguments: StoreKind.all) func digestWindowsCollectEventsIntoOneDelivery(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        let router: EventRouter = { _ in [OutboxRoute(rule: "daily", sinks: ["hook"], digest: .seconds(3600))] }
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        try await driver.poll([driver.chat("a", #""unread_count":0"#), driver.chat("b", #""unread_count":0"#)], at: t0)
        let first = try await driver.poll([driver.chat("a", #""unread_count":1"#), driver.chat("b", #""unread_count":0"#)], at: t0.addingTimeInterval(1), router: router)
        let second = try await driver.poll([driver.chat("a", #""unread_count":1"#), driver.chat("b", #""unread_count":1"#)], at: t0.addingTimeInterval(2), router: router)
        #expect(first.deliveryCount == 1, "the first match opens the digest and its one row")
        #expect(second.deliveryCount == 0, "the second joins it")
        #expect(try await store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(100), excluding: [], limit: 10).isEmpty, "not before the window closes")
        let due = try await store.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(3602), excluding: [], limit: 10)
        #expect(due.count == 1)
        let body = try JSONValue.parse(due[0].eventJSON)
        #expect(body["type"] == .string("digest"))
        #expect(body["count"] == .int(2))
        // Read once, the digest is sealed: a later match opens a new one.
        let third = try await driver.poll([driver.chat("a", #""unread_count":2"#), driver.chat("b", #""unread_count":1"#)], at: t0.addingTimeInterval(3603), router: router)
        #expect(third.deliveryCount == 1)
    }

    @Test(arguments: StoreKind.all) func quietHoursMakeARowDueAtTheirEnd(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        // 22:00–07:00 UTC; the change is detected at 23:00 UTC.
        let quiet = QuietHours(fromMinute: 22 * 60, toMinute: 7 * 60, timeZone: TimeZone(identifier: "UTC")!)
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["hook"], quietHours: quiet)] }
        let night = try #require(Timestamp.parseISO8601("2027-01-14T23:00:00Z"))
        try await driver.poll([driver.chat("a", #""unread_count":0"#)], at: night.addingTimeInterval(-60))
        try await driver.poll([driver.chat("a", #""unread_count":1"#)], at: night, router: router)
        #expect(try await store.dueDeliveries(sink: "hook", now: night.addingTimeInterval(3600), excluding: [], limit: 10).isEmpty)
        let morning = try #require(Timestamp.parseISO8601("2027-01-15T07:00:00Z"))
        #expect(try await store.nextAttemptDate(sink: "hook") == morning)
        #expect(try await store.dueDeliveries(sink: "hook", now: morning, excluding: [], limit: 10).count == 1)
    }

    @Test(arguments: StoreKind.all) func retentionKeepsPendingWorkAndDropsTheRest(kind: StoreKind) async throws {
        let dir = TemporaryDirectory()
        let store = try await kind.open(dir.path)
        let driver = PollDriver(store: store, source: "main")
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["hook"])] }
        let old = Date(timeIntervalSince1970: 1_800_000_000)
        try await driver.poll([driver.chat("a", #""unread_count":0"#), driver.chat("b", #""unread_count":0"#)], at: old)
        try await driver.poll([driver.chat("a", #""unread_count":1"#), driver.chat("b", #""unread_count":1"#)], at: old.addingTimeInterval(1), router: router)
        let due = try await store.dueDeliveries(sink: "hook", now: old.addingTimeInterval(2), excluding: [], limit: 10)
        try await store.record([DeliveryUpdate(deliveryID: due[0].id, change: .attempted(.delivered(status: 200), attempts: 1), at: old.addingTimeInterval(2))])
        let result = try await store.prune(
            olderThan: old.addingTimeInterval(86_400), now: old.addingTimeInterval(86_401), batchSize: 1, checkpoint: false)
        #expect(result.deliveries == 1)
        #expect(result.events == 1, "the event whose delivery is finished goes; the pending one stays")
        let left = try await driver.events()
        #expect(left.count == 1)
        #expect(left.first?["id"]?.stringValue == due[1].eventID)
        #expect(try await store.deliveries().map(\.status) == ["pending"])
    }
}

/// A store implementation the conformance suite runs against. Every implementation of
/// the store interface joins ``all``; each test opens its own store in its own place.
struct StoreKind: Sendable, CustomTestStringConvertible {
    let name: String
    /// Opens the store kept at `location` (a folder); opening the same place again is a restart.
    let open: @Sendable (_ location: String) async throws -> any BridgeStore

    var testDescription: String { name }

    static let sqlite = StoreKind(name: "SQLite") { folder in
        try SQLiteStore(path: (folder as NSString).appendingPathComponent("state/chatbridge.sqlite"))
    }

    /// A schema of its own per test folder, on the server of ``TestPostgres``.
    static let postgres = StoreKind(name: "PostgreSQL") { folder in
        try await TestPostgres.openStore(at: folder)
    }

    /// Every store; PostgreSQL when a server is configured (always under CI).
    static let all: [StoreKind] = TestPostgres.isEnabled ? [.sqlite, .postgres] : [.sqlite]
}
