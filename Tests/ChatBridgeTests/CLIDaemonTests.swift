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

// `chatbridge run` as a daemon: the built binary against the simulator, stopped by
// signals or by a reader that goes away, delivering to a receiver that is down for a while.

extension EndToEndTests {
    @Suite("CLI: the run daemon", .timeLimit(.minutes(2)))
    struct CLIDaemonTests {
        let apiKey = "sk-e2e-daemon-\(UUID().uuidString)"

        /// Log lines at error level or worse (`TIMESTAMP LEVEL ...`).
        static func loudLines(_ lines: [String]) -> [String] {
            lines.filter { line in
                let level = line.split(separator: " ", maxSplits: 2).dropFirst().first
                return level == "error" || level == "critical"
            }
        }

        @Test func aClosedStandardOutputEndsItQuietlyAndLeavesTheRestPending() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 300, seed: 31)) { simulator in
                // A long interval: no poll is in flight when the reader goes away (that case is
                // the next test's).
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL, interval: "30s") + "baseline: emit\n",
                    environment: ["E2E_API_KEY": apiKey])
                // chatbridge run | head -1
                let result = try await workspace.withStarted(["run"], output: .capturedUntilFirstLine) { child in
                    let line = await child.nextLine(timeout: .seconds(15))
                    let first = try JSONValue.parse(try #require(line, "no line came: \(child.standardErrorSoFar)"))
                    #expect(first["type"] == .string("chat.added"))
                    child.closeStandardOutput()
                    let closed = ContinuousClock.now
                    let result = await child.finish(timeout: .seconds(10))
                    #expect(ContinuousClock.now - closed < .seconds(5), "it ends by itself within seconds")
                    return result
                }
                #expect(result.termination == .exited(0), "\(result)")
                #expect(Self.loudLines(result.stderrLines).isEmpty, "quietly: \(result.stderr)")

                let pending = try await workspace.deliveries(["--status", "pending"])
                let delivered = try await workspace.deliveries(["--status", "delivered"])
                #expect(!pending.isEmpty, "what was not written stays pending")
                #expect(pending.count + delivered.count == 300, "pending \(pending.count) + delivered \(delivered.count)")
                #expect(try await workspace.deliveries(["--status", "dead"]).isEmpty)
                #expect(pending.allSatisfy { $0["attempts"] == .int(0) }, "a write to a closed pipe is not a failed attempt")

                // The next run delivers exactly what was left.
                let rest = try await workspace.run(["run", "--once"])
                #expect(rest.exitStatus == 0, "\(rest)")
                let pendingIDs = Set(pending.compactMap { $0["event_id"]?.stringValue })
                let restIDs = try rest.stdoutLines.map { try JSONValue.parse($0)["id"]?.stringValue ?? "" }
                #expect(restIDs.count == pendingIDs.count)
                #expect(Set(restIDs) == pendingIDs)
            }
        }

        @Test
        func aClosedStandardOutputDuringAPollIsQuietToo() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 300, seed: 34)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL) + "baseline: emit\n",
                    environment: ["E2E_API_KEY": apiKey])
                let result = try await workspace.withStarted(["run"], output: .capturedUntilFirstLine) { child in
                    let line = await child.nextLine(timeout: .seconds(15))
                    try #require(line != nil, "no line came: \(child.standardErrorSoFar)")
                    // Not reading on: the pipe fills and the stdout sink waits in write(2),
                    // while the next polls hang in a slow API.
                    await simulator.state.addFault(SimulatedFault(failure: .none, delay: .seconds(5), count: 1000))
                    let before = await simulator.state.stats().requests
                    try await Task.sleep(for: .milliseconds(600))
                    #expect(await simulator.state.stats().requests <= before + 1, "a poll is hanging in the delay")
                    child.closeStandardOutput()
                    return await child.finish(timeout: .seconds(10))
                }
                #expect(result.termination == .exited(0), "\(result)")
                #expect(Self.loudLines(result.stderrLines).isEmpty, "quietly: \(result.stderr)")
                #expect(!result.stderr.contains("CancellationError"), "\(result.stderr)")
            }
        }

        @Test(arguments: [SIGTERM, SIGINT])
        func aStopSignalEndsItWithStatusZero(_ signal: Int32) async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 20, seed: 32)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL, pageSize: 5),
                    environment: ["E2E_API_KEY": apiKey])
                try await workspace.withStarted(["run"]) { child in
                    let polling = await eventually(timeout: .seconds(15)) { await simulator.state.stats().requests >= 8 }
                    try #require(polling, "the daemon polls: \(child.standardErrorSoFar)")
                    let sent = ContinuousClock.now
                    child.send(signal)
                    let termination = await child.waitForExit(timeout: .seconds(10))
                    #expect(termination == .exited(0), "signal \(signal): \(child.standardErrorSoFar)")
                    #expect(ContinuousClock.now - sent < .seconds(10))
                    let requests = await simulator.state.stats().requests
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(await simulator.state.stats().requests == requests, "no poll after the stop")
                    let result = await child.finish(timeout: .seconds(1))
                    #expect(Self.loudLines(result.stderrLines).isEmpty, "\(result.stderr)")
                }
                // What it stored is consistent: the baseline is there.
                let chats = try await workspace.run(["chats"])
                #expect(chats.exitStatus == 0 && chats.stdoutLines.count == 20, "\(chats)")
            }
        }

        @Test func aStopSignalDuringADeliveryEndsItWithStatusZeroAndLosesNothing() async throws {
            try await WebhookRecorder.withRunning(delay: { $0 == 0 ? .seconds(3) : nil }) { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 4, seed: 35)) { simulator in
                    let config = CLIWorkspace.sourceYAML(url: simulator.baseURL) + """
                        baseline: emit
                        sinks:
                          hook:
                            type: webhook
                            url: ${E2E_HOOK_URL}
                            timeout: 20s
                        delivery:
                          concurrency: 1

                        """
                    let workspace = try CLIWorkspace(
                        config: config, rules: ["all.yaml": "name: all\nwhen: \"true\"\nsend: [hook]\n"],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                    try await workspace.withStarted(["run"]) { child in
                        let delivering = await eventually(timeout: .seconds(15)) { await recorder.started >= 1 }
                        try #require(delivering, "a delivery is in flight: \(child.standardErrorSoFar)")
                        let sent = ContinuousClock.now
                        child.send(SIGTERM)
                        let termination = await child.waitForExit(timeout: .seconds(10))
                        #expect(termination == .exited(0), "\(child.standardErrorSoFar)")
                        #expect(ContinuousClock.now - sent < .seconds(10))
                    }
                    let deliveries = try await workspace.deliveries()
                    #expect(deliveries.count == 4)
                    #expect(deliveries.allSatisfy { $0["status"] != .string("dead") }, "\(deliveries.map(\.compactString))")
                    #expect(
                        deliveries.filter { $0["status"] == .string("pending") }.allSatisfy { $0["attempts"] == .int(0) },
                        "an attempt cut short by the stop is not a failed attempt: \(deliveries.map(\.compactString))")

                    // The next run sends what is left: every event arrives at least once.
                    let rest = try await workspace.run(["run", "--once"], timeout: .seconds(40))
                    #expect(rest.exitStatus == 0, "\(rest)")
                    #expect(try await workspace.deliveries(["--status", "delivered"]).count == 4)
                    let stored = Set(try await workspace.storedEvents().compactMap { $0["id"]?.stringValue })
                    #expect(Set(await recorder.eventIDsInArrivalOrder) == stored)
                }
            }
        }

        @Test
        func aStopSignalFinishesTheDeliveryInHand() async throws {
            try await WebhookRecorder.withRunning(delay: { $0 == 0 ? .seconds(2) : nil }) { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 1, seed: 36)) { simulator in
                    let config = CLIWorkspace.sourceYAML(url: simulator.baseURL) + """
                        baseline: emit
                        sinks:
                          hook:
                            type: webhook
                            url: ${E2E_HOOK_URL}
                            timeout: 20s

                        """
                    let workspace = try CLIWorkspace(
                        config: config, rules: ["all.yaml": "name: all\nwhen: \"true\"\nsend: [hook]\n"],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                    try await workspace.withStarted(["run"]) { child in
                        let delivering = await eventually(timeout: .seconds(15)) { await recorder.started >= 1 }
                        try #require(delivering, "a delivery is in flight: \(child.standardErrorSoFar)")
                        child.send(SIGTERM)
                        #expect(await child.waitForExit(timeout: .seconds(10)) == .exited(0), "\(child.standardErrorSoFar)")
                    }
                    let deliveries = try await workspace.deliveries()
                    #expect(deliveries.count == 1)
                    #expect(deliveries.first?["status"] == .string("delivered"), "\(deliveries.map(\.compactString))")
                    #expect(await recorder.requests.count == 1)
                }
            }
        }

        @Test func aReceiverThatIsDownGetsEverythingLaterInOrderPerChat() async throws {
            let receiverUp = TestSwitch(false)
            try await WebhookRecorder.withRunning(status: { _ in receiverUp.isOn ? 200 : 503 }) { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 8, seed: 33)) { simulator in
                    let config = CLIWorkspace.sourceYAML(url: simulator.baseURL) + """
                        sinks:
                          hook:
                            type: webhook
                            url: ${E2E_HOOK_URL}
                        delivery:
                          initial_backoff: 50ms
                          max_backoff: 300ms
                          max_attempts: 1000

                        """
                    let workspace = try CLIWorkspace(
                        config: config, rules: ["all.yaml": "name: all\nwhen: \"true\"\nsend: [hook]\n"],
                        environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                    let ids = await simulator.state.chatIDs()
                    let (chatA, chatB) = (ids[1], ids[5])

                    try await workspace.withStarted(["run"]) { child in
                        let started = await eventually(timeout: .seconds(15)) { await simulator.state.stats().requests >= 2 }
                        try #require(started, "the daemon polls: \(child.standardErrorSoFar)")
                        // Several changes of the same chats, each seen by a poll of its own,
                        // while the receiver answers 503.
                        for step in 1...4 {
                            try await simulator.state.patch(id: chatA, fieldsJSON: #"{"unread_count": \#(step * 10)}"#)
                            if step.isMultiple(of: 2) {
                                try await simulator.state.patch(id: chatB, fieldsJSON: #"{"name": "B, step \#(step)"}"#)
                            }
                            let seen = await simulator.state.stats().requests
                            let polled = await eventually(timeout: .seconds(10)) { await simulator.state.stats().requests >= seen + 2 }
                            try #require(polled)
                        }
                        let failing = await eventually(timeout: .seconds(10)) { await recorder.requests.count >= 3 }
                        #expect(failing, "attempts were made while the receiver was down")
                        receiverUp.set(true)

                        let done = try await eventually(timeout: .seconds(20), interval: .milliseconds(200)) {
                            let all = try await workspace.deliveries()
                            return all.count == 6 && all.allSatisfy { $0["status"] == .string("delivered") }
                        }
                        let states = try await workspace.deliveries().map { $0["status"]?.stringValue ?? "?" }
                        #expect(done, "everything is delivered once the receiver is up: \(states)")
                        child.send(SIGTERM)
                        #expect(await child.waitForExit(timeout: .seconds(10)) == .exited(0))
                        #expect(!child.standardErrorSoFar.contains(WebhookRecorder.secretPath), "the webhook URL leaked")
                    }

                    let events = try await workspace.storedEvents()
                    #expect(events.count == 6, "four changes of A, two of B: \(events.map(\.compactString))")
                    let requests = await recorder.requests
                    #expect(requests.contains { $0.status == 503 }, "some attempts failed")
                    let deliveredIDs = Set(requests.filter { $0.status == 200 }.compactMap { $0.json?["id"]?.stringValue })
                    #expect(deliveredIDs == Set(events.compactMap { $0["id"]?.stringValue }), "every event arrived")
                    for chat in [chatA, chatB] {
                        let detected = events.filter { $0["chat_id"] == .string(chat) }.compactMap { $0["id"]?.stringValue }
                        let arrived = requests.compactMap { $0.json }.filter { $0["chat_id"] == .string(chat) }
                            .compactMap { $0["id"]?.stringValue }
                        // Retries repeat an id; what matters is that no later event overtakes an earlier one.
                        var collapsed: [String] = []
                        for id in arrived where collapsed.last != id { collapsed.append(id) }
                        #expect(collapsed == detected, "chat \(chat): received in detection order")
                    }
                    for request in requests {
                        let id = request.json?["id"]?.stringValue ?? "?"
                        #expect(request.webhookID == "\(id).all.hook", "webhook-id is stable: \(request.webhookID ?? "nil")")
                    }
                }
            }
        }
    }
}
