import Foundation
import GRDB
import Testing

@testable import StoreSQLite

/// The write-ahead log is copied into the database once the writer is idle, never inside
/// a commit (`DeferredCheckpoints`), and stays bounded under a steady stream of commits.
@Suite("SQLite: checkpoints after commits, not inside them")
struct DeferredCheckpointTests {
    /// A pool set up as `SQLiteStore` sets up its own: `checkpoints` on the writer.
    func openPool(_ directory: TemporaryDirectory, _ checkpoints: DeferredCheckpoints) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            if !db.configuration.readonly { checkpoints.install(on: db) }
        }
        let pool = try DatabasePool(path: directory.file("store.sqlite"), configuration: configuration)
        checkpoints.attach(to: pool)
        try pool.write { try $0.execute(sql: "CREATE TABLE filler (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)") }
        return pool
    }

    /// Adds `pages` rows of about a page each, in one transaction.
    func writePages(_ pool: DatabasePool, _ pages: Int) throws {
        let bytes = Data(repeating: 7, count: 4000)
        try pool.write { db in
            for _ in 0..<pages { try db.execute(sql: "INSERT INTO filler (bytes) VALUES (?)", arguments: [bytes]) }
        }
    }

    func databaseFileSize(_ directory: TemporaryDirectory) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: directory.file("store.sqlite")))?[.size] as? Int) ?? -1
    }

    /// Waits (at most 10 s) until `checkpoints` has run `count` checkpoints.
    func waitForCheckpoints(_ checkpoints: DeferredCheckpoints, count: Int) async throws {
        for _ in 0..<200 where checkpoints.completedCount < count {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test func aCommitLeavesItsPagesInTheLogAndTheIdleWriterCopiesThem() async throws {
        let directory = TemporaryDirectory()
        // A long idle period: the look right after the commit cannot race the checkpoint.
        let checkpoints = DeferredCheckpoints(idlePeriod: .seconds(2))
        let pool = try openPool(directory, checkpoints)
        try writePages(pool, 1500)  // past the 1,000 pages of SQLite's automatic checkpoint
        // SQLite's own checkpoint would have copied the pages into the file inside the commit.
        #expect(checkpoints.completedCount == 0)
        #expect(databaseFileSize(directory) < 1_000_000, "the commit returned before any checkpoint")
        try await waitForCheckpoints(checkpoints, count: 1)
        #expect(checkpoints.completedCount == 1)
        #expect(databaseFileSize(directory) > 1500 * 4000, "the idle writer copied the log into the database")
        let rows = try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM filler") }
        #expect(rows == 1500)
    }

    @Test func aLogPastItsCapIsCopiedWhileCommitsKeepComing() async throws {
        let directory = TemporaryDirectory()
        // Never idle long enough: only the cap can start a checkpoint.
        let checkpoints = DeferredCheckpoints(thresholdFrames: 10, capFrames: 200, idlePeriod: .seconds(60))
        let pool = try openPool(directory, checkpoints)
        var transactions = 0
        while checkpoints.completedCount == 0, transactions < 200 {
            try writePages(pool, 20)
            transactions += 1
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(checkpoints.completedCount >= 1, "a checkpoint ran within \(transactions) transactions of 20 pages")
        #expect(transactions < 200)
        #expect(databaseFileSize(directory) > 150 * 4000, "the log past its cap was copied into the database")
    }

    @Test func aLogBelowTheThresholdIsLeftAlone() async throws {
        let directory = TemporaryDirectory()
        let checkpoints = DeferredCheckpoints(idlePeriod: .milliseconds(50))
        let pool = try openPool(directory, checkpoints)
        try writePages(pool, 50)
        try await Task.sleep(for: .milliseconds(300))
        #expect(checkpoints.completedCount == 0)
    }
}
