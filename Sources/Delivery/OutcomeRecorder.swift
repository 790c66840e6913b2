import Logging
import Synchronization
import Store

/// Gathers the outcomes of one sink's attempts and records them in batches, one short
/// transaction each, run beside the sink's loop (never holding it up, never spanning an
/// attempt).
///
/// The loop starts a transaction (``startTransaction(inFlight:)``) when none is running
/// and the batch is due: ``batchSize`` outcomes wait, or no attempt is in flight (the
/// loop may go idle), or the oldest has waited ``maximumDelay``. Outcomes that arrive
/// while a transaction runs wait for the next one. So an outcome waits at most
/// ``maximumDelay`` plus one transaction (the window in which a crash loses it, and its
/// row is attempted again), while a busy sink records dozens per transaction: a
/// transaction per outcome would rewrite the same pages again and again.
///
/// Rows with an outcome not yet recorded (``unrecordedIDs``) must not be read from the
/// queue again: they are still pending there.
///
/// ```swift
/// let recorder = OutcomeRecorder(queue: store, logger: logger) { wakeup.signal() }
/// recorder.add(update)                                   // from an attempt
/// if let batch = recorder.startTransaction(inFlight: 0) { // from the loop
///     group.addTask { await recorder.write(batch) }
/// }
/// ```
final class OutcomeRecorder: Sendable {
    /// Outcomes that make a batch due at once.
    static let batchSize = 64
    /// The longest an outcome waits for its transaction to start while attempts run.
    static let maximumDelay: Duration = .milliseconds(50)
    /// Pauses before the tries of a transaction (the store may be busy or away a moment).
    static let retryPauses: [Duration] = [.zero, .milliseconds(200), .seconds(1)]
    /// How long outcomes the store refused wait before they are tried again (a full disk,
    /// a database gone for a while). Their rows are not read, so not sent, meanwhile.
    static let refusedPause: Duration = .seconds(5)

    private struct State {
        /// Outcomes waiting for a transaction, in the order they came.
        var waiting: [DeliveryUpdate] = []
        var oldestWaiting: ContinuousClock.Instant?
        /// Rows whose outcome is waiting or being written.
        var unrecorded: Set<Int64> = []
        /// Whether a transaction is running.
        var writing = false
        /// After the store refused a batch: no transaction before this.
        var notBefore: ContinuousClock.Instant?
    }

    private let queue: any DeliveryQueue
    private let logger: Logger
    /// Called after each transaction: rows may be read again, the next batch may start.
    private let recorded: @Sendable () -> Void
    private let state = Mutex(State())

    init(queue: any DeliveryQueue, logger: Logger, recorded: @escaping @Sendable () -> Void) {
        self.queue = queue
        self.logger = logger
        self.recorded = recorded
    }

    /// The rows whose outcome is not recorded yet.
    var unrecordedIDs: Set<Int64> { state.withLock { $0.unrecorded } }

    /// Whether every outcome handed in so far is recorded (or given up).
    var isIdle: Bool { state.withLock { $0.unrecorded.isEmpty } }

    /// Hands in one outcome: from now on its row is in ``unrecordedIDs``.
    func add(_ update: DeliveryUpdate) {
        state.withLock { state in
            if state.waiting.isEmpty { state.oldestWaiting = .now }
            state.waiting.append(update)
            state.unrecorded.insert(update.deliveryID)
        }
    }

    /// The outcomes of the next transaction, when none is running and a batch is due
    /// with `inFlight` attempts running (any waiting outcome is due when none is); the
    /// caller then runs ``write(_:)`` with them. `nil` otherwise.
    func startTransaction(inFlight: Int) -> [DeliveryUpdate]? {
        state.withLock { state -> [DeliveryUpdate]? in
            guard !state.writing, let oldest = state.oldestWaiting else { return nil }
            if let notBefore = state.notBefore, ContinuousClock.now < notBefore { return nil }
            guard inFlight == 0 || state.waiting.count >= Self.batchSize
                || ContinuousClock.now - oldest >= Self.maximumDelay
            else { return nil }
            state.writing = true
            defer {
                state.waiting = []
                state.oldestWaiting = nil
            }
            return state.waiting
        }
    }

    /// How long until the waiting outcomes are due with attempts running: `nil` when none
    /// waits or a transaction runs (its end signals).
    var timeUntilDue: Duration? {
        state.withLock { state in
            guard !state.writing, let oldest = state.oldestWaiting else { return nil }
            let due = max(.zero, Self.maximumDelay - (ContinuousClock.now - oldest))
            guard let notBefore = state.notBefore else { return due }
            return max(due, notBefore - ContinuousClock.now)
        }
    }

    /// Records `updates` (from ``startTransaction(inFlight:)``) in one transaction, tried up
    /// to three times, even when the calling task is cancelled: an attempt that happened
    /// must be counted, a delivery that succeeded must not be sent again.
    ///
    /// Should the store refuse them all (a full disk), they wait again, ``refusedPause``
    /// before the next try, and their rows stay unread: a delivered webhook is not sent
    /// again every few seconds while the disk is full. With `keepingRefused` false (the
    /// loop has ended) they are given up instead: their rows stay pending in the store and
    /// are attempted again by the next run, at least once as always.
    func write(_ updates: [DeliveryUpdate], keepingRefused: Bool = true) async {
        let queue = queue
        // A task of its own: the store's calls throw CancellationError in a cancelled task.
        let failure: String? = await Task {
            var failure: String?
            for pause in Self.retryPauses {
                if pause > .zero { try? await Task.sleep(for: pause) }
                do {
                    try await queue.record(updates)
                    return nil
                } catch {
                    failure = "\(error)"
                }
            }
            return failure
        }.value
        state.withLock { state in
            state.writing = false
            if failure != nil, keepingRefused {
                state.waiting = updates + state.waiting
                state.oldestWaiting = min(state.oldestWaiting ?? .now, .now)
                state.notBefore = .now + Self.refusedPause
            } else {
                for update in updates { state.unrecorded.remove(update.deliveryID) }
                state.notBefore = nil
            }
        }
        if let failure {
            logger.error(
                keepingRefused
                    ? "cannot record the outcomes of \(updates.count) attempts; their deliveries are not sent again, trying again in \(Self.refusedPause.secondsText)"
                    : "cannot record the outcomes of \(updates.count) attempts; their deliveries stay pending and are attempted again by the next run",
                metadata: ["error": "\(failure)"])
        }
        recorded()
    }

    /// Records every outcome still waiting (the loop has ended: nothing is in flight).
    func writeRemaining() async {
        state.withLock { $0.notBefore = nil }
        while let batch = startTransaction(inFlight: 0) { await write(batch, keepingRefused: false) }
    }
}
