import AsyncHTTPClient
import Dispatch
import GRDB
import NIOCore
import Testing

@testable import Runtime

/// A poll's tasks prefer an event loop (docs/architecture.md, "Threads"): their jobs must
/// run on that loop's thread, after every kind of suspension a poll makes, and only theirs.
@Suite struct EventLoopTaskExecutorTests {
    @Test func aTaskThatPrefersTheExecutorRunsOnItsLoopAcrossSuspensions() async throws {
        let loop = HTTPClient.shared.eventLoopGroup.next()
        let executor = EventLoopTaskExecutor(eventLoop: loop)
        let directory = TemporaryDirectory()
        let database = try DatabaseQueue(path: directory.file("probe.sqlite"))
        let seen = try await withTaskExecutorPreference(executor) { () async throws -> [Bool] in
            var seen = [loop.inEventLoop]
            try await Task.sleep(for: .milliseconds(2))
            seen.append(loop.inEventLoop)
            // A future completed on another thread, as an HTTP answer is.
            let other = DispatchedValue()
            _ = await other.value()
            seen.append(loop.inEventLoop)
            // Into an actor and back, as into SourcePoller: a default actor runs on the
            // task's preferred executor.
            let actor = LoopProbe()
            seen.append(await actor.isOn(loop))
            seen.append(loop.inEventLoop)
            // A GRDB read, answered on GRDB's queue, as the store's calls are.
            _ = try await database.read { try Int.fetchOne($0, sql: "SELECT 1") }
            seen.append(loop.inEventLoop)
            // Child tasks inherit the preference.
            let children = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 { group.addTask { loop.inEventLoop } }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            return seen + children
        }
        #expect(seen == Array(repeating: true, count: 10))
        // Outside the preference, back on the default pool.
        #expect(!loop.inEventLoop)
    }
}

private actor LoopProbe {
    func isOn(_ loop: any EventLoop) -> Bool { loop.inEventLoop }
}

/// A value handed over from a thread of Dispatch's, as an event loop or GRDB hands theirs.
private struct DispatchedValue {
    func value() async -> Int {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: 1) }
        }
    }
}
