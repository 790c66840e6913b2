import Foundation
import GRDB
import Synchronization
import Testing

@testable import StoreSQLite

/// A clock and a timer that a test moves by hand: the looks at whether the writer is idle
/// run when the test says, so nothing depends on how fast a loaded machine runs.
final class ManualIdleTimer: Sendable {
    private let state = Mutex((now: ContinuousClock.now, looks: [@Sendable () -> Void]()))

    var now: ContinuousClock.Instant { state.withLock { $0.now } }
    var pendingLooks: Int { state.withLock { $0.looks.count } }

    func advance(by duration: Duration) { state.withLock { $0.now += duration } }

    func schedule(_ delay: Duration, _ look: @escaping @Sendable () -> Void) {
        state.withLock { $0.looks.append(look) }
    }

    /// Runs the looks scheduled so far (a look may schedule another).
    func runLooks() {
        let looks = state.withLock { state in
            defer { state.looks.removeAll() }
            return state.looks
        }
        for look in looks { look() }
    }

    /// Checkpoints this timer drives; `thresholdFrames` `nil` keeps the product's default.
    func checkpoints(thresholdFrames: Int32? = 1000, capFrames: Int32 = 32_768) -> DeferredCheckpoints {
        let now: @Sendable () -> ContinuousClock.Instant = { [self] in self.now }
        let schedule: DeferredCheckpoints.Schedule = { [self] delay, look in self.schedule(delay, look) }
        guard let thresholdFrames else { return DeferredCheckpoints(capFrames: capFrames, now: now, schedule: schedule) }
        return DeferredCheckpoints(
            thresholdFrames: thresholdFrames, capFrames: capFrames, idlePeriod: .milliseconds(250), now: now, schedule: schedule)
    }
}

/// The write-ahead log is copied into the database once the writer is idle, never inside
/// a commit (`DeferredCheckpoints`), and stays bounded under a steady stream of commits.
@Suite("SQLite: checkpoints after commits, not inside them")
struct DeferredCheckpointTests {
    /// A real store in a folder of its own, with a table to fill, whose writer's
    /// checkpoints a ``ManualIdleTimer`` drives by hand.
    struct Fixture {
        let directory = TemporaryDirectory()
        let timer = ManualIdleTimer()
        let checkpoints: DeferredCheckpoints
        let store: SQLiteStore

        /// - Parameter thresholdFrames: `nil` for the product's default.
        init(thresholdFrames: Int32? = 1000, capFrames: Int32 = 32_768) throws {
            checkpoints = timer.checkpoints(thresholdFrames: thresholdFrames, capFrames: capFrames)
            store = try SQLiteStore(
                path: directory.file("state/chatbridge.sqlite"), synchronousFull: false, readOnly: false, checkpoints: checkpoints)
            try store.pool.write { try $0.execute(sql: "CREATE TABLE filler (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)") }
        }
    }

    /// Adds `pages` rows of about a page each, in one transaction.
    func writePages(_ store: SQLiteStore, _ pages: Int) throws {
        let bytes = Data(repeating: 7, count: 4000)
        try store.pool.write { db in
            for _ in 0..<pages { try db.execute(sql: "INSERT INTO filler (bytes) VALUES (?)", arguments: [bytes]) }
        }
    }

    /// Lets `duration` pass, runs the looks at whether the writer is idle, and returns once
    /// a checkpoint they queued has run.
    func look(after duration: Duration, _ timer: ManualIdleTimer, _ store: SQLiteStore) async throws {
        timer.advance(by: duration)
        timer.runLooks()
        try await afterQueuedWrites(store)
    }

    /// Returns once what was queued on the store's writer before now has run.
    func afterQueuedWrites(_ store: SQLiteStore) async throws {
        try await store.pool.writeWithoutTransaction { _ in }
    }

    @Test func aCommitLeavesItsPagesInTheLogAndTheIdleWriterCopiesThem() async throws {
        let fixture = try Fixture()
        let (timer, checkpoints, store) = (fixture.timer, fixture.checkpoints, fixture.store)
        try writePages(store, 1500)  // past the 1,000 pages of SQLite's automatic checkpoint
        // SQLite's own checkpoint would have copied the pages into the file inside the commit.
        #expect(store.fileSizes().database < 1_000_000, "the commit returned before any checkpoint")
        #expect(timer.pendingLooks == 1)
        // Not idle long enough yet: the look schedules another one.
        try await look(after: .milliseconds(100), timer, store)
        #expect(checkpoints.completedCount == 0 && timer.pendingLooks == 1)
        try await look(after: .milliseconds(200), timer, store)
        #expect(checkpoints.completedCount == 1)
        #expect(store.fileSizes().database > 1500 * 4000, "the idle writer copied the log into the database")
        let rows = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM filler") }
        #expect(rows == 1500)
    }

    @Test func aLogPastItsCapIsCopiedWhileCommitsKeepComing() async throws {
        // Its timer never runs its looks: only the cap can start a checkpoint.
        let fixture = try Fixture(thresholdFrames: 10, capFrames: 200)
        let (checkpoints, store) = (fixture.checkpoints, fixture.store)
        var transactions = 0
        while checkpoints.completedCount == 0, transactions < 50 {
            try writePages(store, 20)
            try await afterQueuedWrites(store)
            transactions += 1
        }
        #expect(checkpoints.completedCount == 1, "a checkpoint ran within \(transactions) transactions of 20 pages")
        #expect(transactions <= 11, "the first commit past 200 pages queued it")
        #expect(store.fileSizes().database > 150 * 4000, "the log past its cap was copied")
    }

    @Test func aLongTransactionIsNotTakenForAnIdleWriter() async throws {
        let fixture = try Fixture()
        let (timer, checkpoints, store) = (fixture.timer, fixture.checkpoints, fixture.store)
        try writePages(store, 1500)
        // A transaction that outlasts the idle period, as a big poll's apply does: the
        // writer looks idle while it runs, so the look queues a checkpoint behind it.
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        async let longTransaction: Void = store.pool.write { db in
            started.signal()
            release.wait()
            try db.execute(sql: "INSERT INTO filler (bytes) VALUES (x'00')")
        }
        // The transaction holds the writer before the look runs.
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { started.wait(); continuation.resume() }
        }
        timer.advance(by: .milliseconds(300))
        timer.runLooks()
        timer.advance(by: .milliseconds(10))
        release.signal()
        try await longTransaction
        try await afterQueuedWrites(store)
        // The commit came after the checkpoint was queued: it waits for the next idle moment.
        #expect(checkpoints.completedCount == 0, "no checkpoint right behind the long commit")
        #expect(store.fileSizes().database < 1_000_000)
        #expect(timer.pendingLooks == 1)
        try await look(after: .milliseconds(300), timer, store)
        #expect(checkpoints.completedCount == 1, "the next idle moment copies the log")
        #expect(store.fileSizes().database > 1500 * 4000)
    }

    @Test func theStoreLeavesCheckpointsToIdleMomentsAndTheHealthProbeToo() async throws {
        let fixture = try Fixture()
        let (timer, checkpoints, store) = (fixture.timer, fixture.checkpoints, fixture.store)
        let sizeBefore = store.fileSizes().database
        try writePages(store, 1500)
        // `/healthz`'s probe commits on a connection of its own: SQLite's automatic
        // checkpoint there would copy the 1,500 pages inside the probe.
        try await store.checkWritable(timeout: .seconds(5))
        #expect(checkpoints.completedCount == 0)
        #expect(store.fileSizes().database < sizeBefore + 1_000_000, "the pages are still only in the log")
        try await look(after: .seconds(1), timer, store)
        #expect(checkpoints.completedCount == 1)
        #expect(store.fileSizes().database > 1500 * 4000)
    }

    /// The log reaches the disk at checkpoints only (synchronous = NORMAL): by default any
    /// commit is checkpointed at the next idle moment, so that a power loss can take back
    /// the burst under way, not hours of a quiet daemon's commits.
    @Test func byDefaultAnyCommitIsCheckpointedAtTheNextIdleMoment() async throws {
        let fixture = try Fixture(thresholdFrames: nil)
        let (timer, checkpoints, store) = (fixture.timer, fixture.checkpoints, fixture.store)
        try writePages(store, 1)
        #expect(timer.pendingLooks == 1, "a look is due for a one-row commit")
        try await look(after: .seconds(1), timer, store)
        #expect(checkpoints.completedCount >= 1)
    }

    @Test func aLogBelowTheThresholdIsLeftAlone() async throws {
        let fixture = try Fixture()
        let (timer, checkpoints, store) = (fixture.timer, fixture.checkpoints, fixture.store)
        try writePages(store, 50)
        #expect(timer.pendingLooks == 0)
        #expect(checkpoints.completedCount == 0)
    }
}
