import Foundation
import GRDB
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

@Suite("SQLite store: files and paths")
struct SQLiteStoreTests {
    @Test func unreadableStorePathIsAClearError() throws {
        let dir = TemporaryDirectory()
        let blocker = dir.file("file")
        _ = FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        #expect {
            try SQLiteStore(path: blocker + "/sub/chatbridge.sqlite")
        } throws: { error in
            let text = "\(error)"
            return text.contains(blocker) && text.contains("is a file, not a folder") && text.hasPrefix("cannot create ")
        }
    }

    /// A daemon creating its store while `chatbridge status` opens it: both migrate at
    /// once. Every opener must start, whichever of them applies a migration.
    @Test func storesOpenedAtTheSameMomentAllMigrateAndStart() throws {
        let dir = TemporaryDirectory()
        for round in 0..<8 {
            let path = dir.file("round\(round)/chatbridge.sqlite")
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            // An earlier release's store with nothing in it: v2 and later are pending.
            try SQLiteStore.migrator.migrate(try DatabaseQueue(path: path), upTo: "v1")
            let openers = 6
            let failures = Mutex<[String]>([])
            let seeds = Mutex<Set<UInt64>>([])
            DispatchQueue.concurrentPerform(iterations: openers) { _ in
                do {
                    let store = try SQLiteStore(path: path)
                    seeds.withLock { _ = $0.insert(store.fingerprintSeed) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [], "round \(round)")
            #expect(seeds.withLock { $0.count } == 1)
            let queue = try DatabaseQueue(path: path)
            #expect(try queue.read { try SQLiteStore.migrator.hasCompletedMigrations($0) })
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
        #expect(try await store.snapshotChats(source: "main").map(\.chat.compactString) == [
            texts[0].replacingOccurrences(of: #""unread_count":0"#, with: #""unread_count":1"#), texts[1],
        ].map { try JSONValue.parse($0).compactString }, "the chats keep their listing order through the upgrade")
        #expect(try await store.snapshotRowCounts() == SnapshotRowCounts(keys: 2, bodies: 2))
        #expect(try await store.pool.read { try Int.fetchOne($0, sql: "PRAGMA freelist_count") } == 0,
                "the file was compacted after the snapshot moved to its new tables")
    }

    @Test func aChatListedTwiceInABaselineKeepsItsLaterCopyAndNoOtherBody() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let filters = #"{"account_ids":[],"account_type":null,"unread":null}"#
        try await store.beginBaseline(source: "main", filterFingerprint: filters)
        var keys = BaselineKeys()
        // Twice within one batch, and again in a later batch.
        try await store.appendBaselineChats(
            source: "main", chats: [bareChat("b", 1), bareChat("a", 1), bareChat("b", 2)], now: Date(), keys: &keys)
        try await store.appendBaselineChats(source: "main", chats: [bareChat("c", 1), bareChat("a", 2)], now: Date(), keys: &keys)
        #expect(try await store.snapshotRowCounts() == SnapshotRowCounts(keys: 0, bodies: 5), "bodies first, keys at the end")
        #expect(try await store.storeBaselineKeys(source: "main", keys: keys) == 3, "three chats")
        _ = try await store.applyCompletePoll(baselineDone(filters, items: 5), router: { _ in [] })
        let unread = try await store.snapshotChats(source: "main").map { $0.chat["id"]!.stringValue! + "=" + $0.chat["unread_count"]!.compactString }
        #expect(unread == ["b=2", "c=1", "a=2"], "the later copy of each, in the place it was listed last")
        #expect(try await store.snapshotRowCounts() == SnapshotRowCounts(keys: 3, bodies: 3), "no body left behind")
        let index = try await store.loadSnapshotIndex(source: "main")
        #expect(index["a"]?.fingerprint == 2 && index["b"]?.fingerprint == 2 && index["c"]?.fingerprint == 1)
    }

    @Test func eachPageIsNamedByTheTableOrIndexItBelongsTo() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        // Bodies of 3 KB: a page of their own each, so the table spans pages past its root.
        var keys = BaselineKeys()
        try await store.appendBaselineChats(
            source: "main", chats: (0..<20).map { bareChat("c\($0)", 1, padding: 3000) }, now: Date(), keys: &keys)
        _ = try await store.storeBaselineKeys(source: "main", keys: keys)
        let names = try await store.treeNamesByPage()
        #expect(names[1] == "sqlite_schema", "the file's first page holds the schema")
        #expect(names.values.count { $0 == "chat_bodies" } >= 20, "a page for each body")
        #expect(names.values.contains("chats") && names.values.contains("deliveries_queue"))
        let pageCount = try await store.pool.read { try Int.fetchOne($0, sql: "PRAGMA page_count") } ?? 0
        let freeCount = try await store.pool.read { try Int.fetchOne($0, sql: "PRAGMA freelist_count") } ?? 0
        #expect(names.count == pageCount - freeCount, "every page in use is named, and only those")
    }

    @Test func aBaselineCutShortIsStartedAgainFromNothing() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("chatbridge.sqlite")
        let driver = PollDriver(store: try SQLiteStore(path: path), source: "main")
        try await driver.poll([driver.chat("old")])
        // A new baseline (other filters) that stops after one batch, as a killed process would.
        let interrupted = try SQLiteStore(path: path)
        try await interrupted.beginBaseline(source: "main", filterFingerprint: "other filters")
        var keys = BaselineKeys()
        try await interrupted.appendBaselineChats(
            source: "main",
            chats: [StagedChat(id: "half", accountID: nil, accountType: nil, raw: Data(driver.chat("half").utf8), fingerprint: 7)],
            now: Date(), keys: &keys)

        let store = try SQLiteStore(path: path)
        var again = PollDriver(store: store, source: "main")
        again.fingerprint = "other filters"
        let applied = try await again.poll([driver.chat("new")])
        #expect(applied.eventCount == 0, "still a silent baseline")
        #expect(try await store.snapshotChats(source: "main").map { $0.chat["id"]!.stringValue! } == ["new"])
        #expect(try await store.snapshotRowCounts() == SnapshotRowCounts(keys: 1, bodies: 1), "nothing of the cut-short baseline")
    }

    /// A first baseline killed after some pages leaves bodies that no key points at; the
    /// baseline that starts again deletes them (and only them: another source keeps its
    /// snapshot), whether it was killed before its keys were written or after.
    @Test(arguments: [false, true]) func aFirstBaselineKilledAfterSomePagesLeavesNoOrphanBodies(keysWritten: Bool) async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("chatbridge.sqlite")
        let other = PollDriver(store: try SQLiteStore(path: path), source: "other")
        try await other.poll([other.chat("kept1"), other.chat("kept2")])
        let filters = PollDriver(store: try SQLiteStore(path: path), source: "main").fingerprint

        let killed = try SQLiteStore(path: path)
        try await killed.beginBaseline(source: "main", filterFingerprint: filters)
        var keys = BaselineKeys()
        try await killed.appendBaselineChats(source: "main", chats: [bareChat("a", 1), bareChat("b", 1)], now: Date(), keys: &keys)
        try await killed.appendBaselineChats(source: "main", chats: [bareChat("c", 1), bareChat("a", 2)], now: Date(), keys: &keys)
        if keysWritten { _ = try await killed.storeBaselineKeys(source: "main", keys: keys) }
        #expect(try await killed.sourceRecord("main")?.baselineDone == false)
        #expect(try await killed.snapshotChats(source: "main").isEmpty, "a baseline in progress is not a snapshot")

        let store = try SQLiteStore(path: path)
        let again = PollDriver(store: store, source: "main")
        let applied = try await again.poll([again.chat("b"), again.chat("d")])
        #expect(applied.eventCount == 0, "still a silent baseline")
        #expect(try await store.snapshotChats(source: "main").map { $0.chat["id"]!.stringValue! } == ["b", "d"])
        #expect(try await store.snapshotChats(source: "other").map { $0.chat["id"]!.stringValue! } == ["kept1", "kept2"])
        #expect(try await store.snapshotRowCounts() == SnapshotRowCounts(keys: 4, bodies: 4), "no orphan body")
        let orphans = try await store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM chat_bodies WHERE id NOT IN (SELECT body_id FROM chats)")
        }
        #expect(orphans == 0)
        let index = try await store.loadSnapshotIndex(source: "main")
        #expect(index.count == 2 && index["a"] == nil && index["b"] != nil && index["d"] != nil)
    }

    /// A baseline whose listing failed part-way (recorded as a failed poll) is started
    /// again by the next poll, which leaves none of the failed one's bodies.
    @Test func aBaselineThatFailedPartWayLeavesNoBodiesAfterTheNextPoll() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let driver = PollDriver(store: store, source: "main")
        var session = try await PollSession.begin(store: store, source: "main", filterFingerprint: driver.fingerprint)
        #expect(session.isBaseline)
        // More than a batch: the bodies are appended before the listing fails.
        let page = (0..<40).map { bareChat("chat\($0)", 1, padding: PollSession.baselineBatchBytes / 30) }
        try await session.stage(page, now: Date())
        #expect(try await store.snapshotRowCounts().bodies > 0, "the bodies went in before the failure")
        _ = try await session.fail(
            FailedPoll(
                source: "main", filterFingerprint: driver.fingerprint, startedAt: Date(), finishedAt: Date(), pages: 1,
                items: 40, error: "HTTP 502"),
            router: { _ in [] })

        try await driver.poll([driver.chat("x"), driver.chat("y")])
        #expect(try await store.snapshotChats(source: "main").map { $0.chat["id"]!.stringValue! } == ["x", "y"])
        #expect(try await store.snapshotRowCounts() == SnapshotRowCounts(keys: 2, bodies: 2))
    }

    @Test(arguments: [false, true]) func aNewStoreIsPrivateToItsUser(lockedFirst: Bool) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state/chatbridge.sqlite")
        // `run` takes the writer's lock before it opens the store: the lock makes the folder.
        let lock = lockedFirst ? try SQLiteWriterLock(storePath: path) : nil
        defer { withExtendedLifetime(lock) {} }
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
        // A store path under a file: not "run creates it", which it cannot; the writer's lock
        // (which run takes first) says the same.
        let file = dir.file("key.txt")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let underAFile = file + "/chatbridge.sqlite"
        let diagnosis = "cannot create \(underAFile): \(file) is a file, not a folder"
        #expect { try SQLiteStore(path: underAFile, readOnly: true) } throws: { "\($0)" == diagnosis }
        let deeper = file + "/sub/chatbridge.sqlite"
        #expect { try SQLiteStore(path: deeper, readOnly: true) } throws: {
            "\($0)" == "cannot create \(deeper): \(file) is a file, not a folder"
        }
        #expect { try SQLiteWriterLock(storePath: underAFile) } throws: { "\($0)" == diagnosis }
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

/// A chat of a baseline, `{"object":"Chat","id":…,"unread_count":…}` (and `padding` bytes
/// of name), fingerprinted by its unread count.
func bareChat(_ id: String, _ unread: Int, padding: Int = 0) -> StagedChat {
    let name = padding > 0 ? #","name":""# + String(repeating: "x", count: padding) + #"""# : ""
    let text = #"{"object":"Chat","id":"\#(id)","unread_count":\#(unread)\#(name)}"#
    return StagedChat(id: id, accountID: nil, accountType: nil, raw: Data(text.utf8), fingerprint: UInt64(unread))
}

/// The completion of a silent baseline of source `main` listing `items` chats.
func baselineDone(_ filters: String, items: Int) -> CompletedPoll {
    CompletedPoll(
        source: "main", filterFingerprint: filters, isBaseline: true, emitBaseline: false, startedAt: Date(),
        finishedAt: Date(), pages: 2, items: items, reappeared: [],
        absences: .init(removals: [], stillMissing: [], suspicious: false, suspiciousStreak: 0))
}

/// How many rows the two snapshot tables of an SQLite store hold.
struct SnapshotRowCounts: Equatable {
    var keys: Int
    var bodies: Int
}

extension SQLiteStore {
    func snapshotRowCounts() async throws -> SnapshotRowCounts {
        try await pool.read { db in
            SnapshotRowCounts(
                keys: try Int.fetchOne(db, sql: "SELECT count(*) FROM chats") ?? -1,
                bodies: try Int.fetchOne(db, sql: "SELECT count(*) FROM chat_bodies") ?? -1)
        }
    }
}
