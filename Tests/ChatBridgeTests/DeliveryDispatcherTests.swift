import AsyncHTTPClient
import Foundation
import GRDB
import Hummingbird
import Logging
import Synchronization
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

#if canImport(Glibc)
import Glibc
#endif

// The outbox queries of the SQLite store and the dispatcher over a real store in a temp
// folder, delivering to a real receiver on 127.0.0.1.

/// Writes events and outbox rows straight into a store, as the poll's transaction would.
struct OutboxFixture {
    let store: SQLiteStore
    let directory: TemporaryDirectory

    init() throws {
        directory = TemporaryDirectory("chatbridge-delivery")
        store = try SQLiteStore(path: directory.file("state/chatbridge.sqlite"))
    }

    /// Stores an event for `chatID` of source `main`; returns its id.
    @discardableResult
    func event(_ id: String, chat chatID: String = "c1", name: String = "Jane Doe") async throws -> JSONValue {
        var event = sampleEvent(id: id, chatID: chatID, name: .string(name)).objectValue!
        event["id"] = .string(id)
        let value = JSONValue.object(event)
        try await store.pool.write { db in
            try db.execute(
                sql: "INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json) VALUES (?, 'chat.changed', 'unread.increased', 'main', ?, ?, ?)",
                arguments: [id, chatID, Date().storeValue, value.compactString])
        }
        return value
    }

    /// Queues a delivery of event `eventID`; returns the row id.
    @discardableResult
    func delivery(_ eventID: String, chat chatID: String = "c1", rule: String? = "vip", sink: String = "hook",
                  due: Date = Date(timeIntervalSinceNow: -1), attempts: Int = 0) async throws -> Int64 {
        try await store.pool.write { db in
            try db.execute(sql: """
                INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at)
                VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)
                """, arguments: [eventID, rule, sink, "main/\(chatID)", attempts, due.storeValue, Date().storeValue])
            return db.lastInsertedRowID
        }
    }

    /// Event and delivery in one go.
    @discardableResult
    func queued(_ id: String, chat: String = "c1", sink: String = "hook", rule: String? = "vip") async throws -> Int64 {
        try await event(id, chat: chat)
        return try await delivery(id, chat: chat, rule: rule, sink: sink)
    }

    func records(sink: String? = nil) async throws -> [DeliveryRecord] {
        try await store.deliveries(sink: sink)
    }

    /// Waits until no row of `sink` is pending, at most `timeout`.
    func waitUntilFinished(sink: String = "hook", timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await store.deliveries(status: "pending", sink: sink).isEmpty { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}

/// True the first time it is asked, false afterwards.
final class OnceFlag: Sendable {
    private let used = Mutex(false)
    func firstTime() -> Bool {
        used.withLock { used in
            defer { used = true }
            return !used
        }
    }
}

/// A logger that stays quiet in tests.
let quietLogger: Logger = {
    var logger = Logger(label: "delivery-tests")
    logger.logLevel = .critical
    return logger
}()

/// Runs `dispatcher.run()` while `body` runs, then cancels it and waits for it to end.
func whileRunning<T: Sendable>(_ dispatcher: Dispatcher, _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await dispatcher.run() }
        defer { group.cancelAll() }
        return try await body()
    }
}

/// Counts the store's committed transactions.
final class CommitCounter: TransactionObserver, Sendable {
    private let commits = Mutex(0)
    var count: Int { commits.withLock { $0 } }
    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { commits.withLock { $0 += 1 } }
    func databaseDidRollback(_ db: Database) {}
}

@Suite("Delivery: outbox queries of the SQLite store")
struct DeliveryStoreTests {
    @Test func dueRowsAreOldestFirstAndOnePerChat() async throws {
        let outbox = try OutboxFixture()
        let a1 = try await outbox.queued("a1", chat: "a")
        let b1 = try await outbox.queued("b1", chat: "b")
        let a2 = try await outbox.queued("a2", chat: "a")
        let c1 = try await outbox.queued("c1", chat: "c")
        try await outbox.event("later")
        let later = try await outbox.delivery("later", chat: "d", due: Date(timeIntervalSinceNow: 3600))
        let other = try await outbox.queued("other", chat: "e", sink: "elsewhere")

        let due = try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 10)
        #expect(due.map(\.id) == [a1, b1, c1], "a2 waits behind a1; `later` is not due; other sinks are not listed")
        #expect(due[0].eventID == "a1" && due[0].rule == "vip" && due[0].sink == "hook" && due[0].attempts == 0)
        #expect(try JSONValue.parse(due[0].eventJSON)["id"] == .string("a1"))

        // In flight rows are skipped, and still hold back their chat.
        let next = try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [a1, b1], limit: 10)
        #expect(next.map(\.id) == [c1])
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 2).map(\.id) == [a1, b1])
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 0).isEmpty)

        // Once a1 is done, a2 is next for its chat.
        try await outbox.store.record(.delivered(status: 200), deliveryID: a1, attempts: 1, at: Date())
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 10).map(\.id) == [b1, a2, c1])
        _ = (later, other)
    }

    @Test func aRetryingRowHoldsBackItsChat() async throws {
        let outbox = try OutboxFixture()
        let first = try await outbox.queued("x1", chat: "x")
        let second = try await outbox.queued("x2", chat: "x")
        let retryAt = Date(timeIntervalSinceNow: 600)
        try await outbox.store.record(.retry(notBefore: retryAt, status: 500, error: "boom"), deliveryID: first, attempts: 1, at: Date())
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 10).isEmpty)
        // The next date is the head's retry, not the due-but-blocked row behind it.
        let next = try #require(try await outbox.store.nextAttemptDate(sink: "hook"))
        #expect(abs(next.timeIntervalSince(retryAt)) < 0.001)
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: retryAt, excluding: [], limit: 10).map(\.id) == [first])
        _ = second
        #expect(try await outbox.store.nextAttemptDate(sink: "nobody") == nil)
    }

    @Test func recordsEveryKindOfOutcome() async throws {
        let outbox = try OutboxFixture()
        let delivered = try await outbox.queued("e1", chat: "1")
        let retried = try await outbox.queued("e2", chat: "2")
        let dead = try await outbox.queued("e3", chat: "3")
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        try await outbox.store.record(.delivered(status: 204), deliveryID: delivered, attempts: 2, at: at)
        let longError = String(repeating: "é", count: 3000)
        try await outbox.store.record(.retry(notBefore: at.addingTimeInterval(60), status: 503, error: longError), deliveryID: retried, attempts: 1, at: at)
        try await outbox.store.record(.dead(status: 404, error: "sink hook: HTTP 404: gone"), deliveryID: dead, attempts: 1, at: at)

        let records = try await outbox.records()
        #expect(records.map(\.eventID) == ["e1", "e2", "e3"])
        #expect(records[0].status == "delivered" && records[0].attempts == 2 && records[0].lastStatus == 204)
        #expect(records[0].deliveredAt == at && records[0].nextAttemptAt == nil)
        #expect(records[1].status == "pending" && records[1].attempts == 1 && records[1].lastStatus == 503)
        #expect(records[1].nextAttemptAt == at.addingTimeInterval(60))
        #expect(records[1].lastError.map { $0.utf8.count <= 1024 && $0.hasPrefix("éé") } == true, "first 1 KiB kept")
        #expect(records[2].status == "dead" && records[2].lastError == "sink hook: HTTP 404: gone" && records[2].deliveredAt == nil)

        let line = records[2].json
        #expect(line.objectValue?.keys == ["event_id", "rule", "sink", "status", "attempts", "last_status", "last_error", "next_attempt_at", "delivered_at"])
        #expect(line["last_status"] == .int(404))
        #expect(records[0].json["delivered_at"] == .string("2027-01-15T08:00:00.000Z"))

        // A finished row is left alone by a late record.
        try await outbox.store.record(.retry(notBefore: at, status: 500, error: "late"), deliveryID: delivered, attempts: 3, at: at)
        #expect(try await outbox.records()[0].status == "delivered")
    }

    @Test func deliveryLogFilters() async throws {
        let outbox = try OutboxFixture()
        for index in 0..<5 { try await outbox.queued("e\(index)", chat: "c\(index)", sink: index.isMultiple(of: 2) ? "hook" : "stdout") }
        let first = try #require(try await outbox.store.deliveries(eventID: "e0").first)
        try await outbox.store.record(.dead(status: 410, error: "gone"), deliveryID: first.id, attempts: 1, at: Date())
        #expect(try await outbox.store.deliveries(sink: "hook").map(\.eventID) == ["e0", "e2", "e4"])
        #expect(try await outbox.store.deliveries(status: "dead").map(\.eventID) == ["e0"])
        #expect(try await outbox.store.deliveries(status: "pending", sink: "hook").map(\.eventID) == ["e2", "e4"])
        #expect(try await outbox.store.deliveries(limit: 2).map(\.eventID) == ["e3", "e4"], "the most recent, oldest first")
        #expect(try await outbox.store.deliveries(eventID: "nope").isEmpty)
    }

    @Test func replayQueuesAgainWithTheSameEvent() async throws {
        let outbox = try OutboxFixture()
        try await outbox.event("e1")
        let hook = try await outbox.delivery("e1", sink: "hook")
        let slack = try await outbox.delivery("e1", sink: "slack")
        try await outbox.store.record(.delivered(status: 200), deliveryID: hook, attempts: 1, at: Date())
        try await outbox.store.record(.dead(status: 404, error: "gone"), deliveryID: slack, attempts: 3, at: Date())

        let now = Date()
        #expect(try await outbox.store.replay(eventID: "e1", sink: "slack", now: now) == 1)
        var records = try await outbox.store.deliveries(eventID: "e1")
        #expect(records.map(\.status) == ["delivered", "dead", "pending"], "the dead attempt stays visible")
        #expect(records[1].attempts == 3 && records[1].lastError == "gone" && records[1].lastStatus == 404)
        #expect(records[2].sink == "slack" && records[2].attempts == 0 && records[2].lastError == nil)
        let replayed = records[2].id
        #expect(try await outbox.store.dueDeliveries(sink: "slack", now: now, excluding: [], limit: 5).map(\.id) == [replayed])

        // The delivered hook gets a new row; the pending slack row is only made due again.
        #expect(try await outbox.store.replay(eventID: "e1") == 2)
        records = try await outbox.store.deliveries(eventID: "e1")
        #expect(records.map(\.status) == ["delivered", "dead", "pending", "pending"])
        #expect(records.map(\.sink) == ["hook", "slack", "slack", "hook"])
        #expect(records.filter { $0.status == "pending" }.map(\.id).contains(replayed))

        // A sink the event never went to gets a row of its own, with no rule.
        #expect(try await outbox.store.replay(eventID: "e1", sink: "teams", now: now) == 1)
        let teams = try #require(try await outbox.store.deliveries(sink: "teams").first)
        #expect(teams.eventID == "e1" && teams.rule == nil && teams.status == "pending")

        await #expect(throws: ReplayError.self) { try await outbox.store.replay(eventID: "missing") }
    }

    @Test func dueQueriesUseTheOutboxIndexes() async throws {
        let outbox = try OutboxFixture()
        for index in 0..<50 { try await outbox.queued("e\(index)", chat: "c\(index % 7)") }
        try await outbox.store.pool.write { db in try db.execute(sql: "ANALYZE") }
        func plan(_ sql: String) async throws -> String {
            try await outbox.store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "\n")
            }
        }
        // The front of the queue: read in id order from a covering index, no sort, no table.
        let front = try await plan("""
            SELECT id, ordering_key, next_attempt_at FROM deliveries INDEXED BY deliveries_queue
            WHERE sink = 'hook' AND status = 'pending' ORDER BY id LIMIT 1024
            """)
        #expect(front.contains("COVERING INDEX deliveries_queue") && !front.contains("TEMP B-TREE"), "\(front)")
        // When the front waits: due rows by time, each checked by the chat index.
        let byTime = try await plan("""
            SELECT d.id FROM deliveries d INDEXED BY deliveries_due
            WHERE d.sink = 'hook' AND d.status = 'pending' AND d.next_attempt_at <= 1e12 AND d.id NOT IN (1, 2)
              AND NOT EXISTS (SELECT 1 FROM deliveries o INDEXED BY deliveries_by_key WHERE o.sink = d.sink AND o.ordering_key = d.ordering_key AND o.status = 'pending' AND o.id < d.id)
            ORDER BY d.id LIMIT 8
            """)
        let next = try await plan("""
            SELECT d.next_attempt_at FROM deliveries d INDEXED BY deliveries_due
            WHERE d.sink = 'hook' AND d.status = 'pending'
              AND NOT EXISTS (SELECT 1 FROM deliveries o INDEXED BY deliveries_by_key WHERE o.sink = d.sink AND o.ordering_key = d.ordering_key AND o.status = 'pending' AND o.id < d.id)
            ORDER BY d.next_attempt_at LIMIT 1
            """)
        for plan in [byTime, next] {
            #expect(plan.contains("deliveries_due") && plan.contains("deliveries_by_key"), "\(plan)")
            #expect(!plan.contains("SCAN d\n") && !plan.hasPrefix("SCAN d") && !plan.contains("SCAN o"), "\(plan)")
        }
        // Retention finds finished rows by their own index.
        let finished = try await plan("""
            SELECT id FROM deliveries WHERE status = 'delivered' AND finished_at < 1e12 LIMIT 500
            """)
        #expect(finished.contains("INDEX deliveries_finished"), "\(finished)")
    }

    @Test func anOutcomeRewritesFewIndexPages() async throws {
        // A delivered row leaves the queue's indexes (instead of moving inside them),
        // pending rows are not in the finished rows' index, and the per-chat index has no
        // column an outcome changes.
        let outbox = try OutboxFixture()
        let delivered = try await outbox.queued("e1", chat: "a")
        try await outbox.queued("e2", chat: "b")
        try await outbox.store.record(.delivered(status: 200), deliveryID: delivered, attempts: 1, at: Date())
        let partial = try await outbox.store.pool.read { db in
            try Row.fetchAll(db, sql: "PRAGMA index_list(deliveries)").filter { $0["partial"] == 1 }.map { $0["name"] as String }
        }
        #expect(Set(partial) == ["deliveries_queue", "deliveries_due", "deliveries_finished"], "\(partial)")
        let byKey = try await outbox.store.pool.read { db in
            try Row.fetchAll(db, sql: "PRAGMA index_info(deliveries_by_key)").map { $0["name"] as String }
        }
        #expect(byKey == ["sink", "ordering_key", "id"], "no column an outcome changes")
        let due = try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 10)
        #expect(due.map(\.eventID) == ["e2"], "the delivered row is no longer queued")
    }

    @Test func outcomesAreRecordedInBatchesBesideTheLoop() async throws {
        let outbox = try OutboxFixture()
        var ids: [Int64] = []
        for index in 0..<(OutcomeRecorder.batchSize + 4) { ids.append(try await outbox.queued("e\(index)", chat: "c\(index)")) }
        let commits = CommitCounter()
        outbox.store.pool.add(transactionObserver: commits, extent: .databaseLifetime)
        let recorder = OutcomeRecorder(queue: outbox.store, logger: Logger(label: "test")) {}
        func delivered(_ id: Int64) -> DeliveryUpdate {
            DeliveryUpdate(deliveryID: id, change: .attempted(.delivered(status: 200), attempts: 1), at: Date())
        }
        for id in ids[0..<3] { recorder.add(delivered(id)) }
        #expect(recorder.unrecordedIDs == Set(ids[0..<3]), "not readable from the queue until recorded")
        #expect(recorder.startTransaction(inFlight: 2) == nil, "attempts run, few outcomes, none old: wait")
        let wait = try #require(recorder.timeUntilDue)
        #expect(wait > .zero && wait <= OutcomeRecorder.maximumDelay)
        // Nothing in flight (the loop may go idle): due at once.
        let first = try #require(recorder.startTransaction(inFlight: 0))
        #expect(first.map(\.deliveryID) == Array(ids[0..<3]))
        // One that arrives while the transaction runs waits for the next one.
        recorder.add(delivered(ids[3]))
        #expect(recorder.startTransaction(inFlight: 0) == nil, "one transaction at a time")
        await recorder.write(first)
        #expect(commits.count == 1, "one transaction for the three")
        #expect(recorder.unrecordedIDs == [ids[3]])
        #expect(try await outbox.records().filter { $0.status == "delivered" }.count == 3)
        // A full batch is due while attempts run.
        for id in ids[4...] { recorder.add(delivered(id)) }
        let second = try #require(recorder.startTransaction(inFlight: 8))
        #expect(second.count == OutcomeRecorder.batchSize + 1)
        await recorder.write(second)
        #expect(commits.count == 2)
        #expect(recorder.isIdle)
        #expect(try await outbox.records().allSatisfy { $0.status == "delivered" })
        // The oldest waits at most the delay while attempts run.
        let late = try await outbox.queued("late", chat: "late")
        recorder.add(delivered(late))
        try await Task.sleep(for: OutcomeRecorder.maximumDelay)
        let third = try #require(recorder.startTransaction(inFlight: 8), "due once the oldest has waited the delay")
        await recorder.write(third)
        #expect(try await outbox.records().allSatisfy { $0.status == "delivered" })
    }

    /// A store that refuses outcomes (a full disk) must not make delivered rows readable
    /// again: they would be sent every few seconds until the disk is freed. The refusal
    /// here is real: the outbox table is renamed away under the store, then back.
    @Test func outcomesTheStoreRefusesKeepTheirRowsFromBeingSentAgain() async throws {
        let outbox = try OutboxFixture()
        let ids = [try await outbox.queued("e0", chat: "c0"), try await outbox.queued("e1", chat: "c1")]
        let recorder = OutcomeRecorder(queue: outbox.store, logger: Logger(label: "test")) {}
        for id in ids {
            recorder.add(DeliveryUpdate(deliveryID: id, change: .attempted(.delivered(status: 200), attempts: 1), at: Date()))
        }
        try await outbox.store.pool.write { try $0.execute(sql: "ALTER TABLE deliveries RENAME TO deliveries_away") }
        await recorder.write(try #require(recorder.startTransaction(inFlight: 0)))
        #expect(recorder.unrecordedIDs == Set(ids), "still not readable from the queue: not sent again")
        #expect(recorder.startTransaction(inFlight: 0) == nil, "the next try waits")
        #expect(try #require(recorder.timeUntilDue) > OutcomeRecorder.refusedPause - .seconds(1))
        try await outbox.store.pool.write { try $0.execute(sql: "ALTER TABLE deliveries_away RENAME TO deliveries") }
        // The loop ends (a drain's end, a shutdown): what waits is written at once.
        await recorder.writeRemaining()
        #expect(recorder.isIdle)
        #expect(try await outbox.records().allSatisfy { $0.status == "delivered" && $0.attempts == 1 })
    }

    @Test func dueRowsBehindAWaitingFrontAreFound() async throws {
        // More waiting rows at the front of the queue than the dispatcher reads at once
        // (retries in the future), then due rows: the due-time index finds them.
        let outbox = try OutboxFixture()
        let waiting = SQLiteStore.queueFrontWindow + 10
        let future = Date(timeIntervalSinceNow: 3600)
        try await outbox.event("w")
        try await outbox.store.pool.write { db in
            for index in 0..<waiting {
                try db.execute(sql: """
                    INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at, created_at)
                    VALUES ('w', 'vip', 'hook', ?, 'pending', 1, ?, 0)
                    """, arguments: ["main/w\(index)", future.storeValue])
            }
        }
        let a1 = try await outbox.queued("a1", chat: "a")
        try await outbox.queued("a2", chat: "a")
        let b1 = try await outbox.queued("b1", chat: "b")
        let due = try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 10)
        #expect(due.map(\.id) == [a1, b1], "one row per chat, oldest first")
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: Date(), excluding: [a1], limit: 10).map(\.id) == [b1])
        // A front that is all due is read from the front only.
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: future, excluding: [], limit: 3).count == 3)
    }

    @Test func severalOutcomesInOneTransaction() async throws {
        let outbox = try OutboxFixture()
        let first = try await outbox.queued("e1", chat: "1")
        let second = try await outbox.queued("e2", chat: "2")
        let third = try await outbox.queued("e3", chat: "3")
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        try await outbox.store.record([
            DeliveryUpdate(deliveryID: first, change: .attempted(.delivered(status: 200), attempts: 1), at: at),
            DeliveryUpdate(deliveryID: second, change: .attempted(.retry(notBefore: at.addingTimeInterval(30), status: 503, error: "busy"), attempts: 1), at: at),
            DeliveryUpdate(deliveryID: third, change: .postponed(until: at.addingTimeInterval(600)), at: at),
        ])
        let records = try await outbox.records()
        #expect(records.map(\.status) == ["delivered", "pending", "pending"])
        #expect(records[1].attempts == 1 && records[1].nextAttemptAt == at.addingTimeInterval(30))
        #expect(records[2].attempts == 0 && records[2].nextAttemptAt == at.addingTimeInterval(600), "postponed, not attempted")
        try await outbox.store.record([DeliveryUpdate(deliveryID: second, change: .postponed(until: at.addingTimeInterval(900)), at: at)])
        #expect(try await outbox.records()[1].nextAttemptAt == at.addingTimeInterval(900))
        #expect(try await outbox.records()[1].attempts == 1)
    }
}

@Suite("Delivery: dispatcher over a real store and receiver")
struct DeliveryDispatcherTests {
    func webhook(_ url: URL, _ http: HTTPClient, timeout: Duration = .seconds(5)) -> WebhookSink {
        WebhookSink(name: "hook", url: Secret(url.absoluteString), format: .json, timeout: timeout, httpClient: http)
    }

    @Test func perChatOrderSurvivesARetryAndOtherChatsDoNotWait() async throws {
        let outbox = try OutboxFixture()
        try await outbox.queued("a1", chat: "a")
        try await outbox.queued("a2", chat: "a")
        try await outbox.queued("b1", chat: "b")
        let failedOnce = OnceFlag()
        try await withReceiver({ request, _ in
            // a1 fails the first time.
            if request.json?["id"] == .string("a1"), failedOnce.firstTime() {
                return receiverResponse(503)
            }
            return receiverResponse(200)
        }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)],
                policy: RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(300), maxBackoff: .milliseconds(300)),
                concurrency: 4, logger: quietLogger, random: FixedRandom(value: .max))
            let finished = try await whileRunning(dispatcher) { try await outbox.waitUntilFinished() }
            #expect(finished)
            let order = await log.requests.compactMap { $0.json?["id"]?.stringValue }
            #expect(order.filter { $0 != "b1" } == ["a1", "a1", "a2"], "a2 only after a1 got through: \(order)")
            #expect(order.firstIndex(of: "b1")! < order.lastIndex(of: "a1")!, "b1 did not wait for a1's retry: \(order)")
            let records = try await outbox.records()
            #expect(records.allSatisfy { $0.status == "delivered" })
            #expect(records.first { $0.eventID == "a1" }?.attempts == 2)
        }
    }

    @Test func concurrencyIsRespected() async throws {
        let outbox = try OutboxFixture()
        for index in 0..<9 { try await outbox.queued("e\(index)", chat: "c\(index)") }
        try await withReceiver({ _, _ in
            try? await Task.sleep(for: .milliseconds(200))
            return receiverResponse(200)
        }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)], policy: RetryPolicy(maxAttempts: 3),
                concurrency: 3, logger: quietLogger)
            let started = ContinuousClock.now
            try await dispatcher.drain(timeout: .seconds(30))
            #expect(ContinuousClock.now - started >= .milliseconds(550), "three rounds of three")
            #expect(await log.maxInFlight == 3)
            #expect(await log.requests.count == 9)
        }
        #expect(try await outbox.records().allSatisfy { $0.status == "delivered" })
    }

    @Test func nothingIsDeliveredTwiceAfterSuccess() async throws {
        let outbox = try OutboxFixture()
        for index in 0..<5 { try await outbox.queued("e\(index)", chat: "c\(index % 2)") }
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)], policy: RetryPolicy(maxAttempts: 3),
                concurrency: 8, idlePollInterval: .milliseconds(50), logger: quietLogger)
            try await whileRunning(dispatcher) {
                let finished = try await outbox.waitUntilFinished()
                #expect(finished)
                for _ in 0..<5 {
                    dispatcher.notifyNewDeliveries()
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let ids = await log.requests.compactMap { $0.json?["id"]?.stringValue }
            #expect(ids.sorted() == ["e0", "e1", "e2", "e3", "e4"])
            // A second drain finds nothing to do.
            try await dispatcher.drain(timeout: .seconds(2))
            #expect(await log.requests.count == 5)
        }
        #expect(try await outbox.records().allSatisfy { $0.status == "delivered" && $0.attempts == 1 })
    }

    @Test func deadAfterMaxAttempts() async throws {
        let outbox = try OutboxFixture()
        try await outbox.queued("e1")
        try await withReceiver({ _, _ in receiverResponse(500, "still broken") }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)],
                policy: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(20), maxBackoff: .milliseconds(40)),
                concurrency: 2, logger: quietLogger)
            try await dispatcher.drain(timeout: .seconds(30))
            #expect(await log.requests.count == 3)
        }
        let record = try #require(try await outbox.records().first)
        #expect(record.status == "dead" && record.attempts == 3 && record.lastStatus == 500)
        #expect(record.lastError == "gave up after 3 attempts: sink hook: HTTP 500: still broken")
    }

    @Test func clientErrorIsDeadAtOnce() async throws {
        let outbox = try OutboxFixture()
        try await outbox.queued("e1")
        try await outbox.queued("e2")
        try await withReceiver({ _, _ in receiverResponse(404, "no such hook") }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)], policy: RetryPolicy(maxAttempts: 5),
                concurrency: 2, logger: quietLogger)
            try await dispatcher.drain(timeout: .seconds(30))
            #expect(await log.requests.count == 2, "one attempt each; the dead first row does not hold back the second")
        }
        #expect(try await outbox.records().map(\.status) == ["dead", "dead"])
    }

    @Test func drainReturnsWithinItsTimeoutAndLeavesTheRestPending() async throws {
        let outbox = try OutboxFixture()
        try await outbox.queued("e1", chat: "a")
        try await outbox.queued("e2", chat: "b")
        try await withReceiver({ _, _ in receiverResponse(503) }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)],
                policy: RetryPolicy(maxAttempts: 1000, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(100)),
                concurrency: 2, logger: quietLogger)
            let started = ContinuousClock.now
            // Retries keep falling due: the drain keeps going until its timeout (it may end
            // one backoff early, when the next retry would fall due after it).
            // (5 s: a loaded machine can take a second for one attempt.)
            try await dispatcher.drain(timeout: .seconds(5))
            #expect(ContinuousClock.now - started >= .milliseconds(4900), "it kept going until its timeout")
            #expect(await log.requests.count >= 3, "retries that fell due within the timeout were made")
        }
        #expect(try await outbox.records().allSatisfy { $0.status == "pending" })
    }

    @Test func drainEndsAtOnceWhenNothingElseFallsDue() async throws {
        let outbox = try OutboxFixture()
        try await outbox.queued("e1")
        try await outbox.event("future")
        try await outbox.delivery("future", chat: "z", due: Date(timeIntervalSinceNow: 3600))
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, _ in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)], policy: RetryPolicy(maxAttempts: 3),
                concurrency: 2, logger: quietLogger)
            // Ended by itself: the only other row falls due long after the timeout.
            let end = try await dispatcher.drain(timeout: .seconds(120))
            #expect(end == .nothingMoreDue)
        }
        #expect(try await outbox.records().map(\.status) == ["delivered", "pending"])
    }

    @Test func notifyWakesAnIdleLoop() async throws {
        let outbox = try OutboxFixture()
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)], policy: RetryPolicy(maxAttempts: 3),
                concurrency: 2, idlePollInterval: .seconds(3600), logger: quietLogger)
            try await whileRunning(dispatcher) {
                try await Task.sleep(for: .milliseconds(200)) // the loop is asleep now
                try await outbox.queued("e1")
                dispatcher.notifyNewDeliveries()
                // Without the signal the loop would sleep an hour; the wait is only a bound.
                #expect(await log.waitForRequests(1, timeout: .seconds(60)))
            }
        }
    }

    @Test func aSlowSinkDoesNotDelayAnother() async throws {
        let outbox = try OutboxFixture()
        try await outbox.queued("slow1", chat: "a", sink: "slow")
        try await outbox.queued("fast1", chat: "a", sink: "hook")
        try await outbox.queued("fast2", chat: "b", sink: "hook")
        let dir = TemporaryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["STARTED"] = dir.file("started")
        environment["RELEASE"] = dir.file("release")
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            // The slow command runs until the test releases it (its timeout bounds it).
            let slow = ExecSink(
                name: "slow",
                command: .shell(#"touch "$STARTED"; while [ ! -e "$RELEASE" ]; do sleep 0.05; done"#),
                timeout: .seconds(60), environment: environment)
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http), "slow": slow], policy: RetryPolicy(maxAttempts: 3),
                concurrency: 1, logger: quietLogger)
            try await whileRunning(dispatcher) {
                // The slow attempt is in flight (started, not released)...
                var started = false
                for _ in 0..<1200 where !started {
                    started = FileManager.default.fileExists(atPath: dir.file("started"))
                    if !started { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(started)
                // ...and the fast sink's rows get through meanwhile; the slow row is
                // still pending and unattempted.
                #expect(try await outbox.waitUntilFinished(sink: "hook", timeout: .seconds(60)))
                let slowRow = try #require(try await outbox.records(sink: "slow").first)
                #expect(slowRow.status == "pending" && slowRow.attempts == 0)
                // Released, the slow attempt completes too.
                _ = FileManager.default.createFile(atPath: dir.file("release"), contents: Data())
                #expect(try await outbox.waitUntilFinished(sink: "slow", timeout: .seconds(60)))
            }
            #expect(await log.requests.count == 2)
        }
        let slowRecord = try #require(try await outbox.records(sink: "slow").first)
        #expect(slowRecord.status == "delivered" && slowRecord.attempts == 1)
    }

    @Test func closedStdoutStopsTheDispatcherAndKeepsTheRowPending() async throws {
        signal(SIGPIPE, SIG_IGN)
        let outbox = try OutboxFixture()
        try await outbox.queued("e1", sink: "stdout", rule: nil)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        defer { close(fds[1]) }
        let dispatcher = Dispatcher(
            queue: outbox.store, sinks: ["stdout": StdoutSink(fileDescriptor: fds[1])], policy: RetryPolicy(maxAttempts: 3),
            concurrency: 4, logger: quietLogger)
        await #expect(throws: Dispatcher.OutputClosed.self) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await dispatcher.run() }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    Issue.record("the dispatcher did not stop")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        }
        let record = try #require(try await outbox.records().first)
        #expect(record.status == "pending" && record.attempts == 0)
    }

    @Test func stdoutGetsTheEventsInOrder() async throws {
        let outbox = try OutboxFixture()
        for index in 0..<6 { try await outbox.queued("e\(index)", chat: "c\(index % 3)", sink: "stdout", rule: index == 0 ? nil : "r") }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let dispatcher = Dispatcher(
            queue: outbox.store, sinks: ["stdout": StdoutSink(fileDescriptor: fds[1])], policy: RetryPolicy(maxAttempts: 3),
            concurrency: 8, logger: quietLogger)
        try await dispatcher.drain(timeout: .seconds(30))
        close(fds[1])
        let data = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true).readDataToEndOfFile()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map { try? JSONValue.parse(String($0)) }
        #expect(lines.map { $0?["id"]?.stringValue } == ["e0", "e1", "e2", "e3", "e4", "e5"])
        #expect(lines.first??["rule"] == nil && lines.last??["rule"] == .string("r"))
    }

    @Test func aVanishedEventIsDeadNotStuck() async throws {
        let outbox = try OutboxFixture()
        try await outbox.delivery("never-stored", chat: "q")
        try await outbox.queued("e2", chat: "q")
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, _ in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": webhook(url, http)], policy: RetryPolicy(maxAttempts: 3),
                concurrency: 2, logger: quietLogger)
            try await dispatcher.drain(timeout: .seconds(30))
        }
        let records = try await outbox.records()
        #expect(records.map(\.status) == ["dead", "delivered"])
        #expect(records[0].lastError?.contains("no longer stored") == true)
    }
}
