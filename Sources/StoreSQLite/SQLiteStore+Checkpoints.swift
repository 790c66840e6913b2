import ChatBridgeCore
import Dispatch
import GRDB
import GRDBSQLite
import Synchronization

/// Copies the write-ahead log into the database once the writer is idle, not inside a
/// commit.
///
/// SQLite's automatic checkpoint runs inside the commit that takes the log past 1,000
/// pages, before the commit returns. A poll that changed 5,000 chats writes about 13,000
/// pages, and its commit then copied them all into the database file and synced it before
/// the poller could tell the dispatcher that deliveries were waiting; every transaction of
/// delivery outcomes after it did the same while the deliveries went on.
///
/// Here the writer's WAL hook only notes the log's length and the moment of the commit.
/// Once the log holds ``thresholdFrames`` (any commit, by default) and no commit came for
/// ``idlePeriod``, one passive checkpoint is queued on the writer. A log past ``capFrames`` is checkpointed
/// after the commit in hand whatever comes next, so that it stays bounded under a steady
/// stream of commits. `chatbridge run --once` closes the store at its end, which
/// checkpoints what is left: the same work is done in the same run, after the deliveries
/// instead of before them.
///
/// A killed process loses nothing either way: a commit is in the log, and a checkpoint
/// cut short is done again from the log by the next one. With `synchronous = NORMAL` the
/// log itself is synced only by a checkpoint, so what a power loss can take back is what
/// was committed since the last one: before, the commits since the log last crossed
/// 1,000 pages; now, at most the burst that is still under way and the 250 ms after it
/// (up to 128 MiB of log). Either way the snapshot, its events and their outbox go back
/// together, and the next poll detects those changes again (README, "What a crash or
/// power loss can cost"). `synchronous = FULL` syncs every commit, as before. A passive
/// checkpoint never waits for readers; what it could not copy, the next commit schedules
/// again, as SQLite's own would.
///
/// ```swift
/// let checkpoints = DeferredCheckpoints()
/// configuration.prepareDatabase { db in checkpoints.install(on: db) }  // the writer only
/// let pool = try DatabasePool(path: path, configuration: configuration)
/// checkpoints.attach(to: pool)
/// ```
final class DeferredCheckpoints: Sendable {
    /// The log's length, in frames (pages), from which a checkpoint is due at the next idle
    /// moment: any commit, by default. With `synchronous = NORMAL` the log reaches the disk
    /// at checkpoints only; SQLite's own threshold (1,000 pages) let a quiet daemon's
    /// commits wait there for hours, all of them for a power loss to take back.
    let thresholdFrames: Int32
    /// The log's length from which a checkpoint follows the commit at once: by default
    /// 128 MiB of 4 KiB pages, more than a poll of 10,000 changed chats and its deliveries
    /// write.
    let capFrames: Int32
    /// How long the writer must have been without a commit for a due checkpoint to run.
    let idlePeriod: Duration

    /// The time now (a test's clock, or the monotonic one).
    private let now: @Sendable () -> ContinuousClock.Instant
    /// Runs `look` after `delay` (a test's hand, or a timer queue of its own).
    private let schedule: Schedule

    /// Runs a look at whether the writer is idle after a delay.
    typealias Schedule = @Sendable (_ delay: Duration, _ look: @escaping @Sendable () -> Void) -> Void

    init(
        thresholdFrames: Int32 = 1, capFrames: Int32 = 32_768, idlePeriod: Duration = .milliseconds(250),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }, schedule: Schedule? = nil
    ) {
        self.thresholdFrames = thresholdFrames
        self.capFrames = capFrames
        self.idlePeriod = idlePeriod
        self.now = now
        state = Mutex(State(lastCommit: now()))
        self.schedule = schedule ?? { delay, look in Self.timers.asyncAfter(deadline: .now() + delay.seconds, execute: look) }
    }

    private struct State {
        /// Weak: the pool's connections hold this object through their configuration.
        weak var pool: DatabasePool?
        /// When the last commit that left a checkpoint due ended.
        var lastCommit: ContinuousClock.Instant
        /// A look at whether the writer is idle is scheduled.
        var idleCheckPending = false
        /// A checkpoint waits on the writer's queue.
        var queued = false
        /// Checkpoints that ran without an error so far.
        var completed = 0
    }

    private let state: Mutex<State>
    /// Where the looks at whether the writer is idle wait (the project's timers each have a
    /// queue of their own, never `DispatchQueue.global()`).
    private static let timers = DispatchQueue(label: "chatbridge.checkpoint-timers")

    /// Replaces the automatic checkpoint of the writing connection `db` with this one.
    ///
    /// `db` keeps this object alive: the closure that calls `install` is part of its
    /// configuration, which is what the hook's context pointer relies on.
    func install(on db: Database) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_wal_hook(db.sqliteConnection, { context, _, _, frames in
            guard let context else { return SQLITE_OK }
            Unmanaged<DeferredCheckpoints>.fromOpaque(context).takeUnretainedValue().committed(logFrames: frames)
            return SQLITE_OK
        }, context)
    }

    /// The pool whose writer runs the checkpoints. Until it is attached (while the pool
    /// opens and migrates), the log only grows; the first commit after attaching catches up.
    func attach(to pool: DatabasePool) {
        state.withLock { $0.pool = pool }
    }

    /// How many checkpoints ran without an error.
    var completedCount: Int { state.withLock { $0.completed } }

    /// Called by SQLite on the writer's queue after each commit, with the log's length.
    private func committed(logFrames frames: Int32) {
        guard frames >= thresholdFrames else { return }
        let now = now()
        enum Next { case nothing, checkpoint, lookAgain }
        let next: Next = state.withLock { state in
            state.lastCommit = now
            if frames >= capFrames { return .checkpoint }
            if state.idleCheckPending { return .nothing }
            state.idleCheckPending = true
            return .lookAgain
        }
        switch next {
        case .nothing: break
        case .checkpoint: queueCheckpoint(onlyIfIdle: false)
        case .lookAgain: checkpointWhenIdle(lookingAfter: idlePeriod)
        }
    }

    /// Looks after `delay`: queues the checkpoint when no commit came for ``idlePeriod``,
    /// or looks again when that much time has passed since the last one.
    private func checkpointWhenIdle(lookingAfter delay: Duration) {
        schedule(delay) { [self] in
            let quiet = now() - state.withLock { $0.lastCommit }
            guard quiet >= idlePeriod else {
                checkpointWhenIdle(lookingAfter: idlePeriod - quiet)
                return
            }
            state.withLock { $0.idleCheckPending = false }
            queueCheckpoint(onlyIfIdle: true)
        }
    }

    /// Queues one passive checkpoint on the writer, behind the transaction in hand.
    ///
    /// - Parameter onlyIfIdle: the writer looked idle when it was queued. A long
    ///   transaction (a big poll's apply) looks idle while it runs: when a commit ended
    ///   while the checkpoint waited behind it, the checkpoint waits for the next idle
    ///   moment instead of holding up what follows that commit.
    private func queueCheckpoint(onlyIfIdle: Bool) {
        let queuedAt = now()
        let pool: DatabasePool? = state.withLock { state in
            guard !state.queued, let pool = state.pool else { return nil }
            state.queued = true
            return pool
        }
        pool?.asyncWriteWithoutTransaction { [self] db in
            let committedSince = state.withLock { $0.lastCommit } > queuedAt
            if onlyIfIdle, committedSince {
                // That commit has usually scheduled the next look already.
                let lookAgain = state.withLock { state -> Bool in
                    state.queued = false
                    guard !state.idleCheckPending else { return false }
                    state.idleCheckPending = true
                    return true
                }
                if lookAgain { checkpointWhenIdle(lookingAfter: idlePeriod) }
                return
            }
            // A failed checkpoint (a reader holds it back, the disk is full) leaves the log
            // as it is: the next commit schedules another one.
            let copied = (try? db.checkpoint(.passive)) != nil
            state.withLock { state in
                state.queued = false
                if copied { state.completed += 1 }
            }
        }
    }
}
