import Foundation
import GRDB
import Logging
import ServiceLifecycle
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

/// Writes rows straight into the store's tables, at chosen times, as months of running
/// would have left them.
private struct RetentionRows {
    let path: String
    let writer: DatabaseQueue

    init(path: String) throws {
        self.path = path
        writer = try DatabaseQueue(path: path)
    }

    /// An event at `at`, with one delivery per entry of `deliveries` (status, finished at).
    func event(
        _ id: String, at: Date, deliveries: [(status: String, finishedAt: Date?)] = [], payload: Int = 200
    ) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json)
                VALUES (?, 'chat.changed', 'unread.increased', 'main', ?, ?, ?)
                """, arguments: [id, "chat-\(id)", at.timeIntervalSince1970,
                                 #"{"id":"\#(id)","pad":"\#(String(repeating: "x", count: payload))"}"#])
            for (index, delivery) in deliveries.enumerated() {
                try db.execute(sql: """
                    INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at,
                                            created_at, delivered_at, finished_at)
                    VALUES (?, 'rule', ?, ?, ?, 1, ?, ?, ?, ?)
                    """, arguments: [
                        id, "sink\(index)", "main/chat-\(id)", delivery.status, at.timeIntervalSince1970,
                        at.timeIntervalSince1970,
                        delivery.status == "delivered" ? delivery.finishedAt?.timeIntervalSince1970 : nil,
                        delivery.finishedAt?.timeIntervalSince1970,
                    ])
            }
        }
    }

    /// `count` events at `at`, each delivered at `at`, in one transaction.
    func deliveredEvents(_ count: Int, at: Date, prefix: String) throws {
        try writer.write { db in
            for index in 0..<count {
                let id = "\(prefix)-\(index)"
                let time = at.timeIntervalSince1970
                try db.execute(sql: """
                    INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json)
                    VALUES (?, 'chat.changed', 'unread.increased', 'main', ?, ?, ?)
                    """, arguments: [id, "chat-\(index % 50)", time,
                                     #"{"id":"\#(id)","pad":"\#(String(repeating: "y", count: 300))"}"#])
                try db.execute(sql: """
                    INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, next_attempt_at,
                                            created_at, delivered_at, finished_at)
                    VALUES (?, 'rule', 'hook', ?, 'delivered', 1, ?, ?, ?, ?)
                    """, arguments: [id, "main/chat-\(index % 50)", time, time, time, time])
            }
        }
    }

    func poll(at: Date) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO polls (source, started_at, finished_at, outcome, pages, items)
                VALUES ('main', ?, ?, 'complete', 1, 10)
                """, arguments: [at.timeIntervalSince1970 - 1, at.timeIntervalSince1970])
        }
    }

    func throttle(rule: String, chat: String, until: Date) throws {
        try writer.write { db in
            try db.execute(
                sql: "INSERT INTO throttles (rule, ordering_key, until) VALUES (?, ?, ?)",
                arguments: [rule, chat, until.timeIntervalSince1970])
        }
    }

    func count(_ table: String, _ condition: String = "1") throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table) WHERE \(condition)") ?? 0 }
    }

    func eventIDs() throws -> Set<String> {
        try writer.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM events")) }
    }
}

@Suite("Retention: pruning in batches, a bounded database", .timeLimit(.minutes(2)))
struct RetentionTests {
    private let day: TimeInterval = 86_400

    @Test func pruneDeletesWhatIsOldAndKeepsWhatIsStillNeeded() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let rows = try RetentionRows(path: store.path)
        let now = Date()
        let old = now.addingTimeInterval(-40 * day)
        let recent = now.addingTimeInterval(-1 * day)
        let cutoff = now.addingTimeInterval(-30 * day)

        try rows.event("old-delivered", at: old, deliveries: [("delivered", old), ("dead", old)])
        try rows.event("old-pending", at: old, deliveries: [("pending", nil), ("delivered", old)])
        try rows.event("old-retried-late", at: old, deliveries: [("dead", recent)])
        try rows.event("old-no-deliveries", at: old)
        try rows.event("recent-delivered", at: recent, deliveries: [("delivered", recent)])
        try rows.event("recent-pending", at: recent, deliveries: [("pending", nil)])
        try rows.poll(at: old)
        try rows.poll(at: old.addingTimeInterval(60))
        try rows.poll(at: recent)
        try rows.throttle(rule: "r", chat: "main/a", until: now.addingTimeInterval(-60))
        try rows.throttle(rule: "r", chat: "main/b", until: now.addingTimeInterval(3600))

        let result = try await store.prune(olderThan: cutoff, now: now, batchSize: 500)

        #expect(try rows.eventIDs() == ["old-pending", "old-retried-late", "recent-delivered", "recent-pending"],
                "an old event stays while it has a pending delivery or a delivery that finished recently")
        #expect(result.events == 2)
        #expect(result.deliveries == 3, "the old delivered and dead rows, and the pending event's delivered one")
        #expect(try rows.count("deliveries", "event_id = 'old-pending'") == 1)
        #expect(try rows.count("deliveries", "status = 'pending'") == 2, "pending deliveries are never pruned")
        #expect(result.polls == 2)
        #expect(try rows.count("polls") == 1)
        #expect(result.throttles == 1)
        #expect(try rows.count("throttles") == 1)
        #expect(result.checkpointed)
        #expect(store.fileSizes().writeAheadLog == 0, "the write-ahead log was truncated")

        // Every delivery row left still has its event: replay keeps working.
        #expect(try rows.count("deliveries", "event_id NOT IN (SELECT id FROM events)") == 0)

        // Once the late delivery ages out too, its event goes with it.
        let later = try await store.prune(olderThan: now.addingTimeInterval(-0.5 * day), now: now)
        #expect(later.deliveries == 2)
        #expect(try rows.eventIDs() == ["old-pending", "recent-pending"])

        let nothing = try await store.prune(olderThan: now.addingTimeInterval(-0.5 * day), now: now)
        #expect(nothing.total == 0)
        #expect(!nothing.checkpointed, "nothing deleted, nothing to checkpoint")
    }

    @Test func pruneWorksInBatchesOfTheGivenSize() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let rows = try RetentionRows(path: store.path)
        let old = Date().addingTimeInterval(-10 * day)
        try rows.deliveredEvents(1050, at: old, prefix: "old")
        // Old events still waiting for a sink: the event cursor walks past them once.
        for index in 0..<120 { try rows.event("waiting-\(index)", at: old, deliveries: [("pending", nil)]) }
        try rows.deliveredEvents(30, at: Date(), prefix: "new")

        let result = try await store.prune(olderThan: Date().addingTimeInterval(-day), batchSize: 100)

        #expect(result.deliveries == 1050)
        #expect(result.events == 1050)
        // 11 batches of delivered rows (the last one short), 1 of dead ones, 12 of events
        // (1170 old ones walked 100 at a time), 1 of polls, 1 of throttles.
        #expect(result.batches == 11 + 1 + 12 + 1 + 1)
        #expect(try rows.count("events") == 150)
        #expect(try rows.count("deliveries") == 150)
    }

    @Test func aWeekOfRunningLeavesTheDatabaseBounded() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let rows = try RetentionRows(path: store.path)
        let start = Date().addingTimeInterval(-8 * day)
        let retention = 2 * day
        let perDay = 2_000
        var sizes: [Int64] = []
        // Each simulated day: a day's events and deliveries, 48 polls, then the daily prune.
        for dayIndex in 0..<8 {
            let today = start.addingTimeInterval(Double(dayIndex) * day)
            for hour in 0..<4 {
                try rows.deliveredEvents(
                    perDay / 4, at: today.addingTimeInterval(Double(hour) * 3600), prefix: "d\(dayIndex)h\(hour)")
            }
            for slot in 0..<48 { try rows.poll(at: today.addingTimeInterval(Double(slot) * 1800)) }
            let endOfDay = today.addingTimeInterval(day - 1)
            let result = try await store.prune(olderThan: endOfDay.addingTimeInterval(-retention), now: endOfDay)
            let kept = try rows.count("events")
            #expect(kept <= 2 * perDay, "day \(dayIndex): only the retention window is kept (\(kept) events)")
            #expect(try rows.count("deliveries") == kept)
            #expect(try rows.count("polls") <= 2 * 48)
            if dayIndex >= 2 { #expect(result.events == perDay, "day \(dayIndex): one old day pruned") }
            let files = store.fileSizes()
            sizes.append(files.database + files.writeAheadLog)
        }
        // Freed pages are reused: once the window is full, the file stops growing.
        let steady = sizes[3]
        #expect(sizes.last! <= steady + steady / 5, "file sizes by day: \(sizes)")
    }

    @Test func theServicePrunesShortlyAfterStartAndStopsOnGracefulShutdown() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let rows = try RetentionRows(path: store.path)
        try rows.deliveredEvents(20, at: Date().addingTimeInterval(-40 * day), prefix: "old")
        try rows.deliveredEvents(5, at: Date(), prefix: "new")

        let (runs, continuation) = AsyncStream.makeStream(of: PruneResult.self)
        let service = RetentionService(
            store: store, retention: { .seconds(30 * 86_400) }, interval: .milliseconds(50),
            firstRunAfter: .milliseconds(10), batchSize: 7, logger: Logger(label: "test"),
            onPruned: { continuation.yield($0) })
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = runs.makeAsyncIterator()
            let first = try #require(await iterator.next())
            #expect(first.events == 20)
            #expect(first.deliveries == 20)
            let second = try #require(await iterator.next())
            #expect(second.total == 0, "it runs again on its interval")
            await group.triggerGracefulShutdown()
            try await tasks.next()  // returns normally: a finished service, not an error
        }
        #expect(try rows.count("events") == 5)
    }

    @Test func aPruneLetsOtherWritesThroughBetweenBatches() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let rows = try RetentionRows(path: store.path)
        try rows.deliveredEvents(3000, at: Date().addingTimeInterval(-40 * day), prefix: "old")
        // Polls write through the same store while a prune of 3000 rows in batches of 50
        // runs; both finish, and every poll row is there.
        async let prune = store.prune(olderThan: Date().addingTimeInterval(-30 * day), batchSize: 50)
        let polls = StorePollWriter(store: store)
        for index in 0..<20 { try await polls.failedPoll(index) }
        let result = try await prune
        #expect(result.events == 3000)
        #expect(result.batches >= 120)
        #expect(try rows.count("polls") == 20)
    }
}

/// Records failed polls through the store's own API (its write path, as a poller does).
private struct StorePollWriter {
    let store: SQLiteStore
    func failedPoll(_ index: Int) async throws {
        _ = try await store.recordFailedPoll(
            FailedPoll(
                source: "main", filterFingerprint: "f", startedAt: Date(), finishedAt: Date(), pages: 0, items: 0,
                error: "poll \(index) failed"),
            router: everythingToStdout)
    }
}
