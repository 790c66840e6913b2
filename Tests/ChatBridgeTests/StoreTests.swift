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
            return text.contains(blocker) && text.contains("is a file, not a folder") && text.hasPrefix("cannot create ")
        }
    }

    /// Writes a store exactly as the first release did (migration v1 only), with two chats,
    /// a pending delivery and a throttle; returns its content key and the chats' texts.
    static func writeFirstReleaseStore(at path: String) async throws -> (seed: UInt64, texts: [String]) {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
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

        return (seed, texts)
    }

    @Test func aReadOnlyCommandUpgradesAStoreOfTheFirstReleaseOnce() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state/chatbridge.sqlite")
        let (seed, texts) = try await Self.writeFirstReleaseStore(at: path)
        let reader = try SQLiteStore(path: path, readOnly: true)
        #expect(reader.fingerprintSeed == seed)
        #expect(try await reader.snapshotChats(source: "main").count == texts.count)
        // Upgraded in place: the next read-only open finds it current.
        let again = try DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }())
        #expect(try await again.read { try SQLiteStore.migrator.hasCompletedMigrations($0) })
    }

    @Test func aStoreOfTheFirstReleaseUpgradesWithNothingAnnouncedAgain() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state/chatbridge.sqlite")
        let (seed, texts) = try await Self.writeFirstReleaseStore(at: path)

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

    @Test func aNewStoreIsPrivateToItsUser() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state/chatbridge.sqlite")
        _ = try SQLiteStore(path: path)
        let folder = try FileManager.default.attributesOfItem(atPath: dir.file("state"))
        let file = try FileManager.default.attributesOfItem(atPath: path)
        #expect((folder[.posixPermissions] as? Int) == 0o700, "the folder holds chat content")
        #expect((file[.posixPermissions] as? Int) == 0o600)
        if FileManager.default.fileExists(atPath: path + "-wal") {
            let wal = try FileManager.default.attributesOfItem(atPath: path + "-wal")
            #expect((wal[.posixPermissions] as? Int) == 0o600, "SQLite gives its log the store's mode")
        }
    }

    @Test func aFolderOrAForeignFileAtTheStorePathIsAClearError() throws {
        let dir = TemporaryDirectory()
        let folder = dir.file("folder.sqlite")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        #expect { try SQLiteStore(path: folder) } throws: { error in
            "\(error)" == "cannot open \(folder): it is a folder, not a store file"
        }
        let foreign = dir.file("notes.sqlite")
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: foreign))
        #expect { try SQLiteStore(path: foreign) } throws: { error in
            let text = "\(error)"
            return text == "\(foreign) is not a chatbridge store (not an SQLite database)" && !text.contains("NSCocoa")
        }
        #expect { try SQLiteStore(path: dir.file("missing.sqlite"), readOnly: true) } throws: { error in
            "\(error)".contains("no store at \(dir.file("missing.sqlite")) yet")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("missing.sqlite")), "a reader creates nothing")
    }

    @Test func theDiagnosisNamesThePathAndTheCause() {
        // The file system as a non-root user would see it: `state/` read-only.
        let probe = StoreFileProbe(
            kind: { path in
                switch path {
                case "state": .folder
                case "state/chatbridge.sqlite": .missing
                case "old/chatbridge.sqlite": .file
                case "old": .folder
                case "blocker": .file
                default: .missing
                }
            },
            isWritable: { path in path == "old/chatbridge.sqlite" },
            isReadable: { _ in true })
        #expect(SQLiteStore.problem(path: "state/chatbridge.sqlite", probe: probe)
            == "cannot create state/chatbridge.sqlite: permission denied (folder state/ is read-only)")
        #expect(SQLiteStore.problem(path: "old/chatbridge.sqlite", probe: probe)?
            .hasPrefix("cannot open old/chatbridge.sqlite: permission denied (folder old/ is read-only") == true)
        #expect(SQLiteStore.problem(path: "blocker/sub/chatbridge.sqlite", probe: probe)
            == "cannot create blocker/sub/chatbridge.sqlite: blocker is a file, not a folder")
        let writable = StoreFileProbe(kind: probe.kind, isWritable: { _ in true }, isReadable: { _ in true })
        #expect(SQLiteStore.problem(path: "state/chatbridge.sqlite", probe: writable) == nil)
        #expect(SQLiteStore.problem(path: "state/new/deeper/chatbridge.sqlite", probe: writable) == nil,
                "missing folders are made")
    }
}
