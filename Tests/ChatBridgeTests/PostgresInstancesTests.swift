import AsyncHTTPClient
import Foundation
import Synchronization
import Testing
import UnipileSimulator
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Runtime
@testable import Store

#if canImport(Glibc)
import Glibc
#endif

// scale.md with real processes: several `chatbridge run` on one PostgreSQL database,
// simulated sources whose chats change all the time, a webhook receiver; instances are
// killed with SIGKILL, paused with SIGSTOP, and the database is stopped. Then: every
// change detected exactly once, every (event, rule, sink) delivered at least once with a
// stable webhook-id, each chat's deliveries in detection order, nothing left pending.

extension EndToEndTests {
    @Suite("Several instances on one PostgreSQL store", .enabled(if: TestPostgres.isEnabled), .timeLimit(.minutes(4)))
    struct PostgresInstancesTests {
        static let chatCount = 12

        /// `sources` sources on one simulator (each polls every chat), a webhook sink that
        /// gets every event, short leases and intervals so that the test stays short.
        static func config(simulator: RunningSimulator, store: String, sources: Int, lease: String, http: Bool = false) -> String {
            var yaml = "sources:\n"
            for index in 1...sources {
                yaml += """
                      - name: s\(index)
                        url: \(simulator.baseURL)
                        api_key: ${E2E_API_KEY}
                        interval: 250ms
                        timeout: 2s
                        max_requests_per_second: 0

                    """
            }
            yaml += """
                store: \(store)
                lease: \(lease)
                sinks:
                  hook:
                    type: webhook
                    url: ${E2E_HOOK_URL}
                    timeout: 2s
                delivery:
                  initial_backoff: 50ms
                  max_backoff: 500ms
                  concurrency: 4

                """
            // Each instance its own port: `E2E_HTTP_PORT` in its environment.
            if http { yaml += "http:\n  listen: 127.0.0.1:${E2E_HTTP_PORT:-65000}\n" }
            return yaml
        }

        /// Changes one random chat's `unread_count` to the next value of one counter every
        /// `every`, until cancelled; the values only grow, so each chat's events form a chain.
        static func changeContinuously(_ simulator: RunningSimulator, every: Duration) async {
            let ids = await simulator.state.chatIDs()
            var counter = 1000
            while !Task.isCancelled {
                counter += 1
                let id = ids[Int.random(in: 0..<min(chatCount, ids.count))]
                try? await simulator.state.patch(id: id, fieldsJSON: #"{"unread_count":\#(counter)}"#)
                try? await Task.sleep(for: every)
            }
        }

        /// Waits until, for every source, each chat's newest stored event shows the chat's
        /// current `unread_count`, and no delivery is pending.
        static func waitUntilSettled(
            _ workspace: CLIWorkspace, simulator: RunningSimulator, sources: Int, timeout: Duration
        ) async throws -> Bool {
            var final: [String: Int64] = [:]
            for id in await simulator.state.chatIDs().prefix(chatCount) {
                let chat = try JSONValue.parse(try #require(await simulator.state.chatJSON(id: id)))
                final[id] = chat["unread_count"]?.integer
            }
            return try await eventually(timeout: timeout, interval: .milliseconds(500)) {
                let events = try await workspace.storedEvents()
                var newest: [String: Int64] = [:]
                for event in events {
                    guard let source = event["source"]?.stringValue, let chat = event["chat_id"]?.stringValue else { continue }
                    newest["\(source)/\(chat)"] = event["chat"]?["unread_count"]?.integer
                }
                for index in 1...sources {
                    for (chat, value) in final where value > 1000 && newest["s\(index)/\(chat)"] != value { return false }
                }
                let deliveries = try await workspace.deliveries()
                return deliveries.count == events.count && deliveries.allSatisfy { $0["status"] == .string("delivered") }
            }
        }

        /// The checks every test ends with: exactly-once detection (each chat's events form
        /// an unbroken chain of increasing values), at-least-once delivery with stable
        /// webhook-ids, per-chat order at the receiver, nothing pending.
        static func checkExactlyOnceAndInOrder(_ workspace: CLIWorkspace, recorder: WebhookRecorder) async throws {
            let events = try await workspace.storedEvents()
            #expect(events.count >= 20, "changes kept coming: \(events.count) events")
            var chains: [String: [JSONValue]] = [:]
            for event in events {
                let key = "\(event["source"]?.stringValue ?? "?")/\(event["chat_id"]?.stringValue ?? "?")"
                chains[key, default: []].append(event)
            }
            for (key, chain) in chains {
                for (previous, next) in zip(chain, chain.dropFirst()) {
                    let from = next["changes"]?["unread_count"]?["from"]?.integer
                    let to = previous["chat"]?["unread_count"]?.integer
                    #expect(from == to, "\(key): each event starts where the previous one ended (no change detected twice, none lost)")
                    #expect((next["chat"]?["unread_count"]?.integer ?? 0) > (to ?? 0), "\(key): values only grow")
                }
            }
            let ids = events.compactMap { $0["id"]?.stringValue }
            #expect(Set(ids).count == ids.count, "event ids are unique")
            let deliveries = try await workspace.deliveries()
            #expect(deliveries.count == events.count, "one delivery per (event, rule, sink)")
            #expect(deliveries.allSatisfy { $0["status"] == .string("delivered") }, "nothing pending or dead")

            let requests = await recorder.requests
            var firstArrival: [String: Int] = [:]
            for (index, request) in requests.enumerated() {
                let id = try #require(request.json?["id"]?.stringValue)
                #expect(request.webhookID == "\(id).everything.hook", "a redelivery keeps its webhook-id")
                if firstArrival[id] == nil { firstArrival[id] = index }
            }
            #expect(Set(ids).isSubset(of: Set(firstArrival.keys)), "every event reached the receiver")
            for (key, chain) in chains {
                let arrivals = chain.compactMap { $0["id"]?.stringValue }.compactMap { firstArrival[$0] }
                #expect(arrivals == arrivals.sorted(), "\(key): the receiver got the chat's events in detection order")
            }
        }

        static let everythingRule = ["everything.yaml": "name: everything\nwhen: \"true\"\nsend: [hook]\n"]

        @Test func threeInstancesKilledAtRandomLoseNothingAndDetectNothingTwice() async throws {
            let apiKey = "sk-e2e-pg-\(UUID().uuidString)"
            try await TestPostgres.withDatabase { store in
                try await WebhookRecorder.withRunning(delay: { _ in .milliseconds(3) }) { recorder in
                    try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: Self.chatCount, seed: 13)) { simulator in
                        let workspace = try CLIWorkspace(
                            config: Self.config(simulator: simulator, store: store, sources: 6, lease: "2s"),
                            rules: Self.everythingRule, environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                        var instances = try (0..<3).map { _ in try workspace.start(["run"]) }
                        defer { instances.forEach { $0.killNow() } }
                        let changer = Task { await Self.changeContinuously(simulator, every: .milliseconds(60)) }
                        defer { changer.cancel() }

                        var kills = 0
                        let chaosEnds = ContinuousClock.now + .seconds(20)
                        while ContinuousClock.now < chaosEnds {
                            try await Task.sleep(for: .milliseconds(Int.random(in: 1500...3000)))
                            let victim = Int.random(in: 0..<instances.count)
                            #expect(instances[victim].termination == nil, "alive until killed: \(instances[victim].standardErrorSoFar.suffix(1500))")
                            instances[victim].send(SIGKILL)
                            #expect(await instances[victim].waitForExit(timeout: .seconds(5)) == .signalled(SIGKILL))
                            kills += 1
                            instances[victim] = try workspace.start(["run"])
                        }
                        changer.cancel()
                        #expect(kills >= 6)
                        let settled = try await Self.waitUntilSettled(workspace, simulator: simulator, sources: 6, timeout: .seconds(40))
                        #expect(settled, "every change detected and delivered: \(instances.map { $0.standardErrorSoFar.suffix(800) })")
                        for instance in instances { instance.send(SIGTERM) }
                        for instance in instances {
                        let termination = await instance.waitForExit(timeout: .seconds(15))
                        #expect(termination == .exited(0), "\(String(describing: termination)): \(instance.standardErrorSoFar.suffix(1500))")
                    }
                        try await Self.checkExactlyOnceAndInOrder(workspace, recorder: recorder)
                        let sources = Set(try await workspace.storedEvents().compactMap { $0["source"]?.stringValue })
                        #expect(sources == Set((1...6).map { "s\($0)" }), "every source was polled")
                    }
                }
            }
        }

        @Test func aPausedInstanceIsFencedAndItsSourcesMoveOn() async throws {
            let apiKey = "sk-e2e-pg-\(UUID().uuidString)"
            try await TestPostgres.withDatabase { store in
                try await WebhookRecorder.withRunning { recorder in
                    try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: Self.chatCount, seed: 17)) { simulator in
                        let workspace = try CLIWorkspace(
                            config: Self.config(simulator: simulator, store: store, sources: 2, lease: "2s"),
                            rules: Self.everythingRule, environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                        let instances = try (0..<2).map { _ in try workspace.start(["run"]) }
                        defer { instances.forEach { $0.send(SIGCONT); $0.killNow() } }
                        let changer = Task { await Self.changeContinuously(simulator, every: .milliseconds(50)) }
                        defer { changer.cancel() }

                        // Who holds s1, for a second at least? (Right after start the instances
                        // spread the sources between them: a first holder may hand s1 on.)
                        var holder: TestChild?
                        let found = try await eventually(timeout: .seconds(20), interval: .milliseconds(300)) {
                            guard let name = try await Self.holder(of: "s1", workspace) else { return false }
                            try await Task.sleep(for: .seconds(1))
                            guard try await Self.holder(of: "s1", workspace) == name else { return false }
                            holder = instances.first { name.hasSuffix("-\($0.pid)") }
                            return holder != nil
                        }
                        try #require(found, "one instance holds s1: \(instances.map { $0.standardErrorSoFar.suffix(800) })")
                        let paused = try #require(holder)
                        let other = try #require(instances.first { $0.pid != paused.pid })
                        paused.send(SIGSTOP)
                        let movedOn = try await eventually(timeout: .seconds(10), interval: .milliseconds(200)) {
                            try await Self.holder(of: "s1", workspace)?.hasSuffix("-\(other.pid)") == true
                        }
                        #expect(movedOn, "the other instance took s1 over within a lease and an interval")
                        try await Task.sleep(for: .seconds(2))
                        paused.send(SIGCONT)
                        try await Task.sleep(for: .seconds(3))
                        changer.cancel()
                        let settled = try await Self.waitUntilSettled(workspace, simulator: simulator, sources: 2, timeout: .seconds(30))
                        #expect(settled)
                        for instance in instances { instance.send(SIGTERM) }
                        for instance in instances {
                        let termination = await instance.waitForExit(timeout: .seconds(15))
                        #expect(termination == .exited(0), "\(String(describing: termination)): \(instance.standardErrorSoFar.suffix(1500))")
                    }
                        #expect(paused.standardErrorSoFar.contains("lost the lease"), "the paused instance noticed: \(paused.standardErrorSoFar.suffix(1500))")
                        try await Self.checkExactlyOnceAndInOrder(workspace, recorder: recorder)
                    }
                }
            }
        }

        @Test func theDatabaseStoppedForTenSecondsLosesAndDoublesNothing() async throws {
            let apiKey = "sk-e2e-pg-\(UUID().uuidString)"
            let cluster = try await OwnPostgresCluster()
            let httpPorts = try [OwnPostgresCluster.freePort(), OwnPostgresCluster.freePort()]
            try await WebhookRecorder.withRunning { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: Self.chatCount, seed: 19)) { simulator in
                    let workspace = try CLIWorkspace(
                        config: Self.config(simulator: simulator, store: cluster.url, sources: 2, lease: "2s", http: true),
                        rules: Self.everythingRule, environment: ["E2E_API_KEY": apiKey, "E2E_HOOK_URL": recorder.url])
                    let instances = try httpPorts.map { port in
                        try ChatBridgeCLI.start(
                            ["run", "--config", workspace.configPath],
                            environment: workspace.environment.merging(["E2E_HTTP_PORT": "\(port)"]) { _, new in new })
                    }
                    defer { instances.forEach { $0.killNow() } }
                    let changer = Task { await Self.changeContinuously(simulator, every: .milliseconds(80)) }
                    defer { changer.cancel() }
                    try await Task.sleep(for: .seconds(4))

                    try await cluster.stop()
                    let outageEnds = ContinuousClock.now + .seconds(10)
                    let unhealthy = await eventually(timeout: .seconds(9), interval: .milliseconds(250)) {
                        await Self.healthStatus(port: httpPorts[0]) == 503
                    }
                    #expect(unhealthy, "/healthz says the store is unusable")
                    try await Task.sleep(until: outageEnds, clock: .continuous)
                    #expect(instances.allSatisfy { $0.termination == nil }, "instances keep running through the outage")
                    try await cluster.start()

                    try await Task.sleep(for: .seconds(4))
                    changer.cancel()
                    let settled = try await Self.waitUntilSettled(workspace, simulator: simulator, sources: 2, timeout: .seconds(40))
                    #expect(settled, "\(instances.map { $0.standardErrorSoFar.suffix(1500) })")
                    let healthy = await eventually(timeout: .seconds(10), interval: .milliseconds(250)) {
                        await Self.healthStatus(port: httpPorts[0]) == 200
                    }
                    #expect(healthy, "healthy again")
                    for instance in instances { instance.send(SIGTERM) }
                    for instance in instances {
                        let termination = await instance.waitForExit(timeout: .seconds(15))
                        #expect(termination == .exited(0), "\(String(describing: termination)): \(instance.standardErrorSoFar.suffix(1500))")
                    }
                    for instance in instances {
                        let outageLines = instance.standardErrorSoFar.split(separator: "\n").filter {
                            $0.contains("the store is unreachable")
                        }
                        #expect(outageLines.count == 1, "one line per outage: \(outageLines)")
                    }
                    try await Self.checkExactlyOnceAndInOrder(workspace, recorder: recorder)
                }
            }
        }

        /// The instance that holds `source` now, from `chatbridge status --format json`.
        static func holder(of source: String, _ workspace: CLIWorkspace) async throws -> String? {
            let result = try await workspace.run(["status", "--format", "json"], timeout: .seconds(20))
            guard let line = result.stdoutLines.last, let status = try? JSONValue.parse(line) else { return nil }
            for instance in status["instances"]?.arrayValue ?? [] {
                let held = instance["sources"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
                if held.contains(source) { return instance["name"]?.stringValue }
            }
            return nil
        }

        /// The status code of `GET /healthz`, or 0 when nothing answered.
        static func healthStatus(port: Int) async -> Int {
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz")
            guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)) else { return 0 }
            _ = try? await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        }
    }
}

extension JSONValue {
    /// The value when it is an integer.
    fileprivate var integer: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }
}
