import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Detect
@testable import Rules
@testable import Store
@testable import StorePostgres
@testable import StoreSQLite

// `chatbridge store copy --to postgres://…`: a SQLite store with every kind of state is
// copied by the built binary, and the PostgreSQL store then behaves as the SQLite one
// would have: no new baseline, nothing re-announced, pending work kept, throttles and
// open digests in force.

extension EndToEndTests {
    @Suite("store copy: SQLite into PostgreSQL", .enabled(if: TestPostgres.isEnabled), .timeLimit(.minutes(2)))
    struct StoreCopyTests {
        @Test func aCopiedStoreCarriesOnWhereTheSQLiteStoreStopped() async throws {
            let workspace = try CLIWorkspace(config: """
                sources:
                  - name: main
                    url: http://127.0.0.1:9
                    api_key: sk-unused
                store: state/chatbridge.sqlite

                """)
            let sqlite = try SQLiteStore(path: workspace.directory.file("state/chatbridge.sqlite"))
            let driver = PollDriver(store: sqlite, source: "main")
            let t0 = Date(timeIntervalSince1970: 1_900_000_000)
            let router: EventRouter = { event in
                guard let chat = event.chatID else { return [] }
                return chat == "d"
                    ? [OutboxRoute(rule: "daily", sinks: ["hook"], digest: .seconds(86_400 * 365))]
                    : [OutboxRoute(rule: "r", sinks: ["hook"], throttle: .seconds(86_400 * 365))]
            }
            let chats = { (unread: Int) in ["a", "b", "c", "d"].map { driver.chat($0, #""unread_count":\#(unread)"#) } }
            try await driver.poll(chats(0), at: t0)
            try await driver.poll(chats(1), at: t0.addingTimeInterval(1), router: router)
            // One delivered, one dead, one pending; the digest's row pending (its window open).
            let due = try await sqlite.dueDeliveries(sink: "hook", now: t0.addingTimeInterval(2), excluding: [], limit: 10)
            #expect(due.count == 3)
            try await sqlite.record([
                DeliveryUpdate(deliveryID: due[0].id, change: .attempted(.delivered(status: 200), attempts: 1), at: t0.addingTimeInterval(2)),
                DeliveryUpdate(deliveryID: due[1].id, change: .attempted(.dead(status: 410, error: "HTTP 410"), attempts: 1), at: t0.addingTimeInterval(2)),
            ])
            // An outstanding account.error.
            _ = try await sqlite.recordFailedPoll(
                FailedPoll(source: "main", filterFingerprint: driver.fingerprint, startedAt: t0.addingTimeInterval(3),
                           finishedAt: t0.addingTimeInterval(3), pages: 0, items: 0, error: "HTTP 401",
                           accountError: ["status": 401, "type": "errors/disconnected_account"]),
                router: router)
            let before = try await Snapshot(sqlite)

            try await TestPostgres.withDatabase { url in
                let copied = try await workspace.run(["store", "copy", "--to", url])
                #expect(copied.exitStatus == 0, "\(copied)")
                #expect(copied.stdout.contains("copied 1 sources, 4 chats, 5 events, 4 deliveries, 1 digests, 3 throttles, 3 polls"), "\(copied.stdout)")

                let target = try await PostgresStore.open(url: try PostgresStoreURL.parse(url, environment: [:]))
                defer { target.close() }
                let after = try await Snapshot(target)
                #expect(after == before, "everything arrived as it was")
                #expect(target.fingerprintSeed == sqlite.fingerprintSeed)

                // The next poll: no new baseline, nothing re-announced, the account recovered,
                // a change throttled, the digest joined.
                let next = PollDriver(store: target, source: "main")
                var current = chats(1)
                current[2] = next.chat("c", #""unread_count":2"#)
                current[3] = next.chat("d", #""unread_count":2"#)
                let applied = try await next.poll(current, at: t0.addingTimeInterval(10), router: router)
                #expect(applied.chatWrites == 2, "only the two changed chats were written")
                let types = try await next.events().suffix(3).map { $0["type"]?.stringValue }
                #expect(types == ["account.recovered", "chat.changed", "chat.changed"])
                #expect(applied.suppressed.map(\.rule) == ["r"], "the copied throttle is in force")
                #expect(applied.deliveryCount == 0, "c throttled, d joined the copied digest")
                let pending = try await target.deliveries(status: "pending")
                #expect(pending.contains { $0.id == due[2].id }, "the pending delivery is still pending, same id")

                let again = try await workspace.run(["store", "copy", "--to", url])
                #expect(again.exitStatus == 1)
                #expect(again.stderr.contains("holds chatbridge data already: pass --replace"), "\(again.stderr)")
                let replaced = try await workspace.run(["store", "copy", "--to", url, "--replace"])
                #expect(replaced.exitStatus == 0, "\(replaced)")
                #expect(try await Snapshot(target) == before, "--replace: the copy again, nothing of the later poll")
            }
        }

        /// What a store holds, as its interface shows it.
        struct Snapshot: Equatable {
            var sources: [SourceRecord]
            var chats: [String]
            var events: [StoredEvent]
            var deliveries: [DeliveryRecord]

            init(_ store: any BridgeStore) async throws {
                sources = try await store.sourceRecords().map { record in
                    var record = record
                    record.pollSequence = nil  // a PostgreSQL-only counter
                    return record
                }
                chats = try await store.snapshotChats(source: nil).map { "\($0.source) \($0.chat.compactString)" }
                events = try await store.events(EventQuery())
                deliveries = try await store.deliveries()
            }
        }
    }
}
