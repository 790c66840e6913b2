import Foundation
import Testing
import UnipileSimulator
@testable import ChatBridgeCore
@testable import StoreSQLite

// One writer per store: a second `chatbridge run` on the same store stops at once with
// who holds it, while the read-only commands keep working beside the daemon.

extension EndToEndTests {
    @Suite("CLI: one writer per store", .timeLimit(.minutes(1)))
    struct CLIWriterLockTests {
        let apiKey = "sk-e2e-lock-\(UUID().uuidString)"

        @Test func aSecondRunStopsAtOnceAndReadersStillWork() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 20, seed: 5)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL, interval: "30s") + "baseline: emit\n",
                    environment: ["E2E_API_KEY": apiKey])
                let result = try await workspace.withStarted(["run"], output: .captured) { daemon in
                    #expect(await daemon.nextLine(timeout: .seconds(15)) != nil, "the daemon delivers: \(daemon.standardErrorSoFar)")
                    let second = try await workspace.run(["run", "--once"])
                    #expect(second.exitStatus == 1)
                    #expect(second.stderr.contains("another chatbridge (pid \(daemon.pid)) is running on"), "\(second.stderr)")
                    #expect(!second.stderr.contains("starting"), "the second run never says it starts: \(second.stderr)")
                    #expect(second.stdout.isEmpty, "the second run delivered nothing")
                    let events = try await workspace.run(["events", "--limit", "5"])
                    #expect(events.exitStatus == 0, "a reader works beside the daemon: \(events.stderr)")
                    #expect(events.stdoutLines.count == 5)
                    // `replay` writes beside the daemon, which sends the event again.
                    let firstLine = try #require(events.stdoutLines.first)
                    let replayed = try #require(try JSONValue.parse(firstLine)["id"]?.stringValue)
                    let replay = try await workspace.run(["replay", replayed])
                    #expect(replay.exitStatus == 0, "\(replay.stderr)")
                    var seenAgain = false
                    for _ in 0..<40 where !seenAgain {
                        guard let line = await daemon.nextLine(timeout: .seconds(1)) else { continue }
                        seenAgain = (try? JSONValue.parse(line))?["id"]?.stringValue == replayed
                    }
                    #expect(seenAgain, "the running daemon delivered the replayed event")
                    daemon.send(SIGTERM)
                    return await daemon.finish(timeout: .seconds(10))
                }
                #expect(result.termination == .exited(0), "\(result)")
                // Once the daemon is gone, the store is free again.
                let after = try await workspace.run(["run", "--once"])
                #expect(after.exitStatus == 0, "\(after.stderr)")
            }
        }
    }
}

@Suite("SQLite store: the writer lock")
struct SQLiteWriterLockTests {
    @Test func theLockIsExclusiveAndReleasedWithItsHolder() throws {
        let dir = TemporaryDirectory()
        let store = dir.file("state/chatbridge.sqlite")
        let first = try SQLiteWriterLock(storePath: store)
        #expect(throws: SQLiteWriterLock.Unavailable.self) { try SQLiteWriterLock(storePath: store) }
        do {
            _ = try SQLiteWriterLock(storePath: store)
        } catch {
            #expect("\(error)" == "another chatbridge (pid \(getpid())) is running on \(store)")
        }
        first.release()
        let again = try SQLiteWriterLock(storePath: store)
        again.release()
    }
}
