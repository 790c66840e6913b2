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
