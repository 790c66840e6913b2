import Synchronization

/// Races `operation` against `timeout`: its result when it finishes first, `nil` when the
/// time runs out first (the operation is then cancelled). An error the operation throws
/// before the timeout is rethrown.
///
/// The one timeout helper of chatbridge: a request that must not outlive its budget,
/// a drain that ends at a deadline.
///
/// ```swift
/// guard let response = try await withTimeout(.seconds(10), { try await exchange(request) }) else {
///     throw TimedOut()
/// }
/// ```
package func withTimeout<Result: Sendable>(
    _ timeout: Duration, _ operation: @escaping @Sendable () async throws -> Result
) async throws -> Result? {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        // The first child to finish decides: the result, or the timeout.
        return try await group.next() ?? nil
    }
}

/// The value of `task` when it finishes within `timeout`, else `nil`, without waiting for
/// it any longer: the task runs on (it is not cancelled), and another caller may wait for
/// it again.
///
/// For what ``withTimeout(_:_:)`` cannot bound: an operation that does not stop when
/// cancelled (a query to a database server that was paused mid-answer). A task group
/// waits for every child at its end, so a child that ignores cancellation holds
/// `withTimeout` as long as it runs; this answers at the deadline instead. Use it for a
/// task shared by its callers (one check in flight), so that what runs on is bounded.
///
/// ```swift
/// let records = await value(of: sharedRead, within: .seconds(2)) ?? .unknown
/// ```
package func value<Value: Sendable>(of task: Task<Value, Never>, within timeout: Duration) async -> Value? {
    await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
        // Whichever finishes first resumes; the other finds it done.
        let resumer = OnceResumer(continuation)
        let timer = Task {
            try? await Task.sleep(for: timeout)
            resumer.resume(nil)
        }
        Task {
            let result = await task.value
            timer.cancel()
            resumer.resume(result)
        }
    }
}

/// Resumes a continuation the first time it is asked, and ignores the later times.
private final class OnceResumer<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value?, Never>?>

    init(_ continuation: CheckedContinuation<Value?, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: Value?) {
        let taken = continuation.withLock { continuation in
            defer { continuation = nil }
            return continuation
        }
        taken?.resume(returning: value)
    }
}
