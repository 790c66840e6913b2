import Foundation
import Logging
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Detect
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StorePostgres

/// What several instances sharing one PostgreSQL store need beyond the conformance
/// suite: leases and fencing, delivery claims, digests across instances, one retention
/// run at a time, migrations that do not race. Two or three `PostgresStore` values on
/// one schema stand for instances (each has a process token of its own).
@Suite("PostgreSQL store shared by instances", .enabled(if: TestPostgres.isEnabled), .timeLimit(.minutes(2)))
struct PostgresStoreTests {
    @Test func aLeaseIsHeldByOneInstanceAndMovesOnWhenItExpires() async throws {
        let dir = TemporaryDirectory()
        let records = LogRecords()
        let a = try await TestPostgres.openStore(
            at: dir.path, instance: "a", lease: .seconds(1), logger: Logger(label: "test") { _ in RecordingLogHandler(records: records) })
        let b = try await TestPostgres.openStore(at: dir.path, instance: "b", lease: .seconds(1))
        let first = try #require(try await a.acquireLease(source: "main"))
        #expect(first.holder == "a")
        #expect(try await b.acquireLease(source: "main") == nil, "held by a")
        #expect(try await a.acquireLease(source: "main")?.epoch == first.epoch, "renewing keeps the epoch")
        try await Task.sleep(for: .milliseconds(1300))
        let taken = try #require(try await b.acquireLease(source: "main"), "a stopped renewing: b takes it")
        #expect(taken.epoch == first.epoch + 1, "a new holder, a new epoch")
        #expect(try await a.renewLeases().isEmpty, "a learns it lost the lease")
        #expect(!a.heldSources.contains("main"))
        // Said once, by the instance that lost it (several instances log into one place).
        let lost = records.all.filter { $0.message.hasPrefix("lost the lease") }
        #expect(lost.map(\.message) == ["lost the lease on main to another instance"])
        #expect(lost.first?.metadata["instance"] == "a")
        let overview = try await b.leaseOverview()
        #expect(overview.leases.map(\.holder) == ["b"])
    }

    @Test func aPollOfAnInstancePausedPastItsLeaseCommitsNothing() async throws {
        let dir = TemporaryDirectory()
        let a = try await TestPostgres.openStore(at: dir.path, instance: "a", lease: .seconds(1))
        let b = try await TestPostgres.openStore(at: dir.path, instance: "b", lease: .seconds(1))
        let onA = PollDriver(store: a, source: "main")
        let onB = PollDriver(store: b, source: "main")
        try await onA.poll([onA.chat("x", #""unread_count":0"#)])

        // a begins a poll and stages a change, then is paused past its lease…
        var session = try await PollSession.begin(store: a, source: "main", filterFingerprint: onA.fingerprint)
        let changed = onA.chat("x", #""unread_count":1"#)
        try await session.stage([StagedChat(
            id: "x", accountID: "acc", accountType: "LINKEDIN", raw: Data(changed.utf8),
            fingerprint: ChatFingerprint.fingerprint(of: Array(changed.utf8), seed: a.fingerprintSeed))], now: Date())
        try await Task.sleep(for: .milliseconds(1300))
        // …b takes the source over and detects the same change.
        #expect(try await b.acquireLease(source: "main") != nil)
        #expect(try await onB.poll([changed]).eventCount == 1)

        // a wakes up and tries to commit what it saw: refused, nothing stored.
        let poll = CompletedPoll(
            source: "main", filterFingerprint: onA.fingerprint, isBaseline: false, emitBaseline: false,
            startedAt: Date(), finishedAt: Date(), pages: 1, items: 1, reappeared: [],
            absences: SnapshotRules.planAbsences(knownCount: 1, absent: [], suspiciousStreak: 0))
        await #expect(throws: LeaseLost.self) { try await session.commit(poll, router: everythingToStdout) }
        await #expect(throws: LeaseLost.self) {
            try await a.recordFailedPoll(
                FailedPoll(source: "main", filterFingerprint: onA.fingerprint, startedAt: Date(), finishedAt: Date(),
                           pages: 0, items: 0, error: "x"), router: everythingToStdout)
        }
        let events = try await onB.events()
        #expect(events.count == 1, "the change was detected once")
        #expect(try await b.deliveries().count == 1)
        #expect(try await b.sourceRecord("main")?.consecutiveFailures == 0, "a's failure was not recorded either")
    }

    @Test func theCachedIndexIsTrustedOnlyWhileNoOtherInstancePolled() async throws {
        let dir = TemporaryDirectory()
        let a = try await TestPostgres.openStore(at: dir.path, instance: "a", lease: .seconds(1))
        let b = try await TestPostgres.openStore(at: dir.path, instance: "b", lease: .seconds(1))
        let onA = PollDriver(store: a, source: "main")
        let onB = PollDriver(store: b, source: "main")
        let baseline = try await onA.poll([onA.chat("x")])
        let afterA = try #require(try await a.sourceRecord("main")?.pollSequence)
        #expect(baseline.pollSequence == afterA)
        try await Task.sleep(for: .milliseconds(1300))
        try await onB.poll([onB.chat("x", #""unread_count":4"#)])
        #expect(try await a.sourceRecord("main")?.pollSequence == afterA + 1, "b's commit moved the sequence on")
    }

    @Test func deliveriesAreClaimedByOneInstanceAndOnePerChatIsInFlight() async throws {
        let dir = TemporaryDirectory()
        let a = try await TestPostgres.openStore(at: dir.path, instance: "a", claimDuration: .seconds(1))
        let b = try await TestPostgres.openStore(at: dir.path, instance: "b", claimDuration: .seconds(1))
        let driver = PollDriver(store: a, source: "main")
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["hook"])] }
        try await driver.poll([driver.chat("x", #""unread_count":0"#), driver.chat("y", #""unread_count":0"#)])
        for count in 1...2 {
            try await driver.poll(
                [driver.chat("x", #""unread_count":\#(count)"#), driver.chat("y", #""unread_count":\#(count)"#)],
                router: router)
        }
        let now = Date().addingTimeInterval(1)
        let onA = try await a.dueDeliveries(sink: "hook", now: now, excluding: [], limit: 10)
        #expect(onA.count == 2, "the head of each chat")
        #expect(try await b.dueDeliveries(sink: "hook", now: now, excluding: [], limit: 10).isEmpty,
                "claimed by a, and each chat's second row waits behind its first")
        try await a.record([DeliveryUpdate(
            deliveryID: onA[0].id, change: .attempted(.delivered(status: 200), attempts: 1), at: now)])
        let onB = try await b.dueDeliveries(sink: "hook", now: now, excluding: [], limit: 10)
        #expect(onB.count == 1, "that chat's next row, for b")
        #expect(onB.first?.id != onA[1].id)

        // a dies holding onA[1]: once its claim runs out, b attempts the same row.
        try await Task.sleep(for: .milliseconds(1300))
        let retried = try await b.dueDeliveries(sink: "hook", now: now, excluding: Set(onB.map(\.id)), limit: 10)
        #expect(retried.map(\.id) == [onA[1].id])
        #expect(retried.first?.eventID == onA[1].eventID, "same event, so the same webhook-id")
    }

    @Test func aDigestWindowIsSharedByInstances() async throws {
        let dir = TemporaryDirectory()
        let a = try await TestPostgres.openStore(at: dir.path, instance: "a")
        let b = try await TestPostgres.openStore(at: dir.path, instance: "b")
        let router: EventRouter = { _ in [OutboxRoute(rule: "daily", sinks: ["hook"], digest: .seconds(3600))] }
        let one = PollDriver(store: a, source: "one")
        let two = PollDriver(store: b, source: "two")
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        try await one.poll([one.chat("x", #""unread_count":0"#)], at: t0)
        try await two.poll([two.chat("y", #""unread_count":0"#)], at: t0)
        #expect(try await one.poll([one.chat("x", #""unread_count":1"#)], at: t0.addingTimeInterval(1), router: router).deliveryCount == 1)
        #expect(try await two.poll([two.chat("y", #""unread_count":1"#)], at: t0.addingTimeInterval(2), router: router).deliveryCount == 0,
                "b's match joins the digest a opened")
        let due = try await b.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(3602), excluding: [], limit: 10)
        #expect(due.count == 1)
        #expect(try JSONValue.parse(due[0].eventJSON)["count"] == .int(2))
    }

    @Test func retentionRunsOnOneInstanceAtATime() async throws {
        let dir = TemporaryDirectory()
        let a = try await TestPostgres.openStore(at: dir.path, instance: "a")
        let b = try await TestPostgres.openStore(at: dir.path, instance: "b")
        #expect(try await a.takeJob("retention", for: .seconds(60)))
        #expect(try await !b.takeJob("retention", for: .seconds(60)), "a runs it")
        let skipped = try await b.prune(olderThan: Date(), now: Date(), batchSize: 10, checkpoint: false)
        #expect(skipped.batches == 0, "b's prune does nothing while a's runs")
        try await a.releaseJob("retention")
        #expect(try await b.takeJob("retention", for: .seconds(60)))
    }

    @Test func metricsShowLeasesHeldAndDeliveriesClaimed() async throws {
        let dir = TemporaryDirectory()
        let store = try await TestPostgres.openStore(at: dir.path, instance: "a")
        let driver = PollDriver(store: store, source: "main")
        try await driver.poll([driver.chat("x", #""unread_count":0"#)])
        try await driver.poll([driver.chat("x", #""unread_count":1"#)], router: { _ in [OutboxRoute(rule: "r", sinks: ["hook"])] })
        #expect(try await store.dueDeliveries(sink: "hook", now: Date().addingTimeInterval(1), excluding: [], limit: 5).count == 1)
        let metrics = BridgeMetrics()
        try await metrics.refresh(from: store)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains("chatbridge_source_leases_held 1"), "\(text)")
        #expect(text.contains(#"chatbridge_deliveries_claimed{sink="hook"} 1"#), "\(text)")
    }

    @Test func explainFindsAnEventsDeliveriesDigestsAndThrottle() async throws {
        let dir = TemporaryDirectory()
        let store = try await TestPostgres.openStore(at: dir.path, instance: "a")
        let driver = PollDriver(store: store, source: "main")
        let router: EventRouter = { _ in
            [OutboxRoute(rule: "r", sinks: ["hook"]), OutboxRoute(rule: "daily", sinks: ["hook"], digest: .seconds(3600))]
        }
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        try await driver.poll([driver.chat("x", #""unread_count":0"#)], at: t0)
        try await driver.poll([driver.chat("x", #""unread_count":1"#)], at: t0.addingTimeInterval(1), router: router)
        try await driver.poll([driver.chat("x", #""unread_count":2"#)], at: t0.addingTimeInterval(2), router: router)
        let events = try await driver.events().compactMap { $0["id"]?.stringValue }
        let facts = try await store.deliveryFacts(eventID: events[0])
        #expect(facts.deliveries.map(\.rule) == ["r"])
        #expect(facts.digests.map(\.rule) == ["daily"])
        #expect(facts.digests.first?.delivery?.eventID.hasPrefix("digest-") == true, "the digest's own row")
        let earlier = try await store.latestDelivery(
            rule: "r", orderingKey: "main/x", atOrBefore: t0.addingTimeInterval(2), excludingEventID: events[1])
        #expect(earlier?.eventID == events[0])
    }

    @Test func dueRowsBehindAFrontOfWaitingRowsAreFound() async throws {
        let dir = TemporaryDirectory()
        let store = try await TestPostgres.openStore(at: dir.path, instance: "a")
        let driver = PollDriver(store: store, source: "main")
        let ids = (0..<(PostgresStore.queueFrontWindow + 76)).map { "c\($0)" }
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        try await driver.poll(ids.map { driver.chat($0, #""unread_count":0"#) }, at: t0)
        try await driver.poll(
            ids.map { driver.chat($0, #""unread_count":1"#) }, at: t0.addingTimeInterval(1),
            router: { _ in [OutboxRoute(rule: "r", sinks: ["hook"])] })
        let now = t0.addingTimeInterval(2)
        let all = try await store.dueDeliveries(sink: "hook", now: now, excluding: [], limit: ids.count)
        #expect(all.count == ids.count)
        // The oldest 1024 wait an hour for a retry; the newest 76 are due again at once.
        try await store.record(all.enumerated().map { index, row in
            DeliveryUpdate(
                deliveryID: row.id,
                change: .attempted(.retry(
                    notBefore: index < PostgresStore.queueFrontWindow ? now.addingTimeInterval(3600) : now,
                    status: 503, error: "HTTP 503"), attempts: 1),
                at: now)
        })
        let behind = try await store.dueDeliveries(sink: "hook", now: now, excluding: [], limit: 200)
        #expect(behind.map(\.id) == all.suffix(76).map(\.id), "found by due time behind the waiting front")
    }

    @Test func instancesStartingTogetherMigrateOnce() async throws {
        let dir = TemporaryDirectory()
        let seeds = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for index in 0..<4 {
                group.addTask {
                    try await TestPostgres.openStore(at: dir.path, instance: "i\(index)").fingerprintSeed
                }
            }
            return try await group.reduce(into: Set<UInt64>()) { $0.insert($1) }
        }
        #expect(seeds.count == 1, "one schema, one seed")
    }

    @Test func anUnreachableServerIsNamedWithoutItsPassword() async throws {
        let url = try PostgresStoreURL.parse("postgres://u:pw-d0n7-l3ak@127.0.0.1:1/x", environment: [:])
        do {
            _ = try await PostgresStore.open(url: url)
            Issue.record("opened a store on port 1")
        } catch {
            #expect("\(error)".hasPrefix("store postgres://u:***@127.0.0.1:1/x: "), "\(error)")
            #expect(!"\(error)".contains("pw-d0n7-l3ak"))
        }
    }
}
