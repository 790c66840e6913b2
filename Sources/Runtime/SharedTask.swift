import ChatBridgeCore
import Synchronization

/// One piece of work in flight for many callers, each waiting for it at most a deadline:
/// the probes of `/healthz` and the scrapes of `/metrics` share one read of the store.
///
/// A caller that finds the work running waits for that run; the first caller after it
/// ended starts the next. A run that outlives the deadline (a database paused mid-answer,
/// which no cancellation reaches) goes on alone, and later callers wait for it too, so
/// that a stuck store holds one run, not one per probe (``value(of:within:)``).
///
/// ```swift
/// let recordsRead = SharedTask<[SourceRecord]?> { try? await store.sourceRecords() }
/// let records = await recordsRead.value(within: .seconds(3))   // nil: no answer in time
/// ```
final class SharedTask<Value: Sendable>: Sendable {
    private let work: @Sendable () async -> Value
    private let running = Mutex<Task<Value, Never>?>(nil)

    init(_ work: @escaping @Sendable () async -> Value) {
        self.work = work
    }

    /// The value of the run in flight, or of a new one; `nil` when `timeout` passes first.
    func value(within timeout: Duration) async -> Value? {
        let (task, started) = running.withLock { running -> (Task<Value, Never>, Bool) in
            if let running { return (running, false) }
            let task = Task { await work() }
            running = task
            return (task, true)
        }
        if started {
            // Forgotten once it ends, so that the next caller starts a new run.
            Task {
                _ = await task.value
                self.running.withLock { if $0 == task { $0 = nil } }
            }
        }
        return await ChatBridgeCore.value(of: task, within: timeout)
    }
}
