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

@Suite("SQLite store: files and paths")
struct SQLiteStoreTests {
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

    @Test func aStoreOfTheFirstReleaseUpgradesWithNothingAnnouncedAgain() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state/chatbridge.sqlite")
        try FileManager.default.createDirectory(atPath: dir.file("state"), withIntermediateDirectories: true)
        let filters = #"{"account_ids":[],"account_type":null,"unread":null}"#
        let texts = [
            #"{"object":"Chat","id":"a","account_id":"acc","account_type":"LINKEDIN","unread_count":0}"#,
            #"{"object":"Chat","id":"b","account_id":"acc","account_type":"LINKEDIN","unread_count":2}"#,
        ]
        // The schema and rows exactly as the first release wrote them (migration v1 only).
        let queue = try DatabaseQueue(path: path)
        try SQLiteStore.migrator.migrate(queue, upTo: "v1")
        let seed = try #require(try await queue.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'digest_seed'").flatMap { UInt64($0) }
        })
        try await queue.write { db in
            try db.execute(
                sql: "INSERT INTO sources (name, filter_fingerprint, baseline_done) VALUES ('main', ?, 1)",
                arguments: [filters])
            for text in texts {
                let id = try JSONValue.parse(text)["id"]!.stringValue!
                try db.execute(sql: """
                    INSERT INTO chats (source, chat_id, account_id, account_type, raw, digest, missing, updated_at)
                    VALUES ('main', ?, 'acc', 'LINKEDIN', ?, ?, 0, 0)
                    """, arguments: [id, Data(text.utf8),
                                     Int64(bitPattern: ChatFingerprint.fingerprint(of: Array(text.utf8), seed: seed))])
            }
            try db.execute(sql: """
                INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json)
                VALUES ('e-old', 'chat.changed', 'unread.increased', 'main', 'b', 0, '{"id":"e-old","chat_id":"b"}');
                INSERT INTO deliveries (event_id, rule, sink, chat_key, status, attempts, next_attempt_at, created_at)
                VALUES ('e-old', 'r', 'hook', 'main/b', 'pending', 0, 0, 0);
                INSERT INTO throttles (rule, chat_key, until) VALUES ('r', 'main/a', 4102444800);
                """)
        }
        try queue.close()

        let store = try SQLiteStore(path: path)
        #expect(store.fingerprintSeed == seed, "the content key carries over")
        let driver = PollDriver(store: store, source: "main")
        let unchanged = try await driver.poll(texts)
        #expect(unchanged.eventCount == 0, "nothing re-announced")
        #expect(unchanged.chatWrites == 0, "every stored fingerprint still matches")
        let due = try await store.dueDeliveries(sink: "hook", now: Date(), excluding: [], limit: 10)
        #expect(due.map(\.eventID) == ["e-old"], "the pending delivery survives, in its chat's queue")
        let router: EventRouter = { _ in [OutboxRoute(rule: "r", sinks: ["hook"], throttle: .seconds(60))] }
        let changed = try await driver.poll(
            [texts[0].replacingOccurrences(of: #""unread_count":0"#, with: #""unread_count":1"#), texts[1]],
            router: router)
        #expect(changed.eventCount == 1)
        #expect(changed.deliveryCount == 0, "the throttle window carried over")
    }
}
