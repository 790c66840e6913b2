import AsyncHTTPClient
import Dispatch
import NIOCore
import Testing

@testable import Runtime

/// A poll's tasks prefer an event loop (docs/architecture.md, "Threads"): their jobs must
/// run on that loop's thread, after every kind of suspension a poll makes, and only theirs.
@Suite struct EventLoopTaskExecutorTests {
    @Test func aTaskThatPrefersTheExecutorRunsOnItsLoopAcrossSuspensions() async throws {
        let loop = HTTPClient.shared.eventLoopGroup.next()
        let executor = EventLoopTaskExecutor(eventLoop: loop)
        let seen = try await withTaskExecutorPreference(executor) { () async throws -> [Bool] in
            var seen = [loop.inEventLoop]
            try await Task.sleep(for: .milliseconds(2))
            seen.append(loop.inEventLoop)
            // A future completed on another thread, as an HTTP answer or a store call is.
            let other = DispatchedValue()
            _ = await other.value()
            seen.append(loop.inEventLoop)
            // Child tasks inherit the preference.
            let children = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { loop.inEventLoop } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            return seen + children
        }
        #expect(seen == Array(repeating: true, count: 7))
        // Outside the preference, back on the default pool.
        #expect(!loop.inEventLoop)
    }

    @Test func anUnstructuredTaskDoesNotInheritTheLoop() async {
        let loop = HTTPClient.shared.eventLoopGroup.next()
        let executor = EventLoopTaskExecutor(eventLoop: loop)
        let detached = await withTaskExecutorPreference(executor) {
            await Task { loop.inEventLoop }.value
        }
        #expect(!detached)
    }
}

/// A value handed over from a thread of Dispatch's, as GRDB's queues hand theirs.
private struct DispatchedValue {
    func value() async -> Int {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: 1) }
        }
    }
}
