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

    private struct State {
        /// Outcomes waiting for a transaction, in the order they came.
        var waiting: [DeliveryUpdate] = []
        var oldestWaiting: ContinuousClock.Instant?
        /// Rows whose outcome is waiting or being written.
        var unrecorded: Set<Int64> = []
        /// Whether a transaction is running.
        var writing = false
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
            return max(.zero, Self.maximumDelay - (ContinuousClock.now - oldest))
        }
    }

    /// Records `updates` (from ``startTransaction(inFlight:)``) in one transaction, tried up
    /// to three times, even when the calling task is cancelled: an attempt that happened
    /// must be counted, a delivery that succeeded must not be sent again. Should the store
    /// refuse them all, the rows stay pending and are attempted again.
    func write(_ updates: [DeliveryUpdate]) async {
        let queue = queue
        let logger = logger
        // A task of its own: the store's calls throw CancellationError in a cancelled task.
        await Task {
            for (index, pause) in Self.retryPauses.enumerated() {
                if pause > .zero { try? await Task.sleep(for: pause) }
                do {
                    try await queue.record(updates)
                    return
                } catch {
                    logger.error(
                        "cannot record the outcomes of \(updates.count) attempts (\(index + 1) of \(Self.retryPauses.count))",
                        metadata: ["error": "\(error)"])
                }
            }
        }.value
        state.withLock { state in
            for update in updates { state.unrecorded.remove(update.deliveryID) }
            state.writing = false
        }
        recorded()
    }

    /// Records every outcome still waiting (the loop has ended: nothing is in flight).
    func writeRemaining() async {
        while let batch = startTransaction(inFlight: 0) { await write(batch) }
    }
}
