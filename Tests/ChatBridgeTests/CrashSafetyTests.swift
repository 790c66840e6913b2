import Foundation
import Testing
import UnipileSimulator
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// delivery.md: "at least once, per sink, in detection order per chat; nothing is lost
// when the process is killed at any moment". The built binary is killed with SIGKILL
// at several moments (starting, storing the baseline, delivering) and started again;
// then the store and a real receiver are compared.

extension EndToEndTests {
    @Suite("Crash safety: kill -9 at any moment", .timeLimit(.minutes(3)))
    struct CrashSafetyTests {
        /// When to kill one run of the daemon.
        enum KillMoment: CustomStringConvertible {
            /// This long after the start.
            case after(Duration)
            /// As soon as the receiver has this many more requests than when the run started.
            case afterRequests(Int)

            var description: String {
                switch self {
                case .after(let delay): "after \(delay)"
                case .afterRequests(let count): "after \(count) more webhook requests"
                }
            }
        }

        @Test func killedAtRandomMomentsItLosesNothingAndDetectsNothingTwice() async throws {
            let apiKey = "sk-e2e-crash-\(UUID().uuidString)"
            let chatCount = 200
            // A little latency per request, so that kills land in the middle of delivering.
            try await WebhookRecorder.withRunning(delay: { _ in .milliseconds(8) }) { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: chatCount, seed: 61)) { simulator in
                    let config = CLIWorkspace.sourceYAML(url: simulator.baseURL, pageSize: 50) + """
                        baseline: emit
                        sinks:
                          hook:
                            type: webhook
                            url: ${E2E_HOOK_URL}
                        delivery:
                          initial_backoff: 50ms
                          max_backoff: 200ms
                          concurrency: 4

                        """
                    let workspace = try CLIWorkspace(
                        config: config, rules: ["everything.yaml": "name: everything\nwhen: \"true\"\nsend: [hook]\n"],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])

                    let moments: [KillMoment] = [
                        .after(.milliseconds(Int.random(in: 30...80))),
                        .after(.milliseconds(Int.random(in: 150...300))),
                        .afterRequests(Int.random(in: 10...30)),
                        .after(.milliseconds(Int.random(in: 400...700))),
                        .afterRequests(Int.random(in: 5...20)),
                    ]
                    var receivedAtKills: [Int] = []
                    for moment in moments {
                        let before = await recorder.requests.count
                        try await workspace.withStarted(["run"]) { child in
                            switch moment {
                            case .after(let delay):
                                try await Task.sleep(for: delay)
                            case .afterRequests(let count):
                                _ = await eventually(timeout: .seconds(10), interval: .milliseconds(2)) {
                                    await recorder.requests.count >= min(before + count, chatCount) || child.termination != nil
                                }
                            }
                            #expect(child.termination == nil, "still running when killed (\(moment)): \(child.standardErrorSoFar)")
                            child.send(SIGKILL)
                            let termination = await child.waitForExit(timeout: .seconds(5))
                            #expect(termination == .signalled(SIGKILL), "\(moment)")
                        }
                        receivedAtKills.append(await recorder.requests.count)
                    }

                    // Last run: until every delivery is done, and it has polled once (so that it
                    // runs its services and handles SIGTERM: everything may have been delivered
                    // before it even started).
                    try await workspace.withStarted(["run", "--log-level", "debug"]) { child in
                        let done = try await eventually(timeout: .seconds(40), interval: .milliseconds(250)) {
                            let deliveries = try await workspace.deliveries()
                            return deliveries.count == chatCount
                                && deliveries.allSatisfy { $0["status"] == .string("delivered") }
                                && child.standardErrorSoFar.contains("poll complete")
                        }
                        #expect(done, "everything delivered in the end: \(child.standardErrorSoFar.suffix(2000))")
                        child.send(SIGTERM)
                        #expect(await child.waitForExit(timeout: .seconds(10)) == .exited(0))
                    }

                    let events = try await workspace.storedEvents()
                    let eventIDs = events.compactMap { $0["id"]?.stringValue }
                    let storedIDs = Set(eventIDs)
                    #expect(eventIDs.count == storedIDs.count, "event ids are unique")
                    #expect(events.filter { $0["type"] == .string("chat.added") }.count == chatCount, "each chat detected once")
                    #expect(Set(events.compactMap { $0["chat_id"]?.stringValue }).count == chatCount)
                    #expect(events.count == chatCount, "nothing else was detected")
                    let deliveries = try await workspace.deliveries()
                    #expect(deliveries.count == chatCount, "one delivery per (event, rule, sink)")
                    #expect(Set(deliveries.compactMap { $0["event_id"]?.stringValue }) == storedIDs)

                    let requests = await recorder.requests
                    var bodiesByID: [String: [RecordedWebhook]] = [:]
                    for request in requests {
                        let id = try #require(request.json?["id"]?.stringValue, "every body is an event")
                        bodiesByID[id, default: []].append(request)
                    }
                    #expect(storedIDs.isSubset(of: Set(bodiesByID.keys)), "every stored event reached the receiver")
                    #expect(Set(bodiesByID.keys).isSubset(of: storedIDs), "the receiver never saw an id the store does not have")
                    for (id, copies) in bodiesByID {
                        #expect(copies.allSatisfy { $0.webhookID == "\(id).everything.hook" }, "a redelivery keeps its webhook-id")
                        #expect(copies.allSatisfy { $0.body == copies[0].body }, "a redelivery carries the same event")
                    }
                    let duplicates = requests.count - bodiesByID.count
                    #expect(
                        receivedAtKills.contains { $0 > 0 && $0 < chatCount },
                        "at least one kill landed mid-delivery; requests at each kill: \(receivedAtKills), duplicates: \(duplicates)")
                }
            }
        }
    }
}
