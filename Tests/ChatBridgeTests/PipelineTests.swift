import AsyncHTTPClient
import Foundation
import Logging
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

/// One source polling the built-in simulator over loopback into a real SQLite file.
struct PipelineHarness {
    let simulator: RunningSimulator
    let store: SQLiteStore
    let poller: SourcePoller
    let directory: TemporaryDirectory

    static func with<T: Sendable>(
        chats: Int = 30, seed: UInt64 = 7, pageSize: Int = 10, timeout: Duration = .seconds(5),
        emitBaseline: Bool = false, apiKey: String = "test-key", clientKey: String? = nil,
        logRecords: LogRecords? = nil,
        _ body: @Sendable (PipelineHarness) async throws -> T
    ) async throws -> T {
        let options = SimulatorOptions(apiKey: apiKey, chats: chats, seed: seed)
        return try await UnipileSimulator.withRunning(options) { simulator in
            let directory = TemporaryDirectory()
            let store = try SQLiteStore(path: directory.file("state/chatbridge.sqlite"))
            let source = SourceConfiguration(
                name: "main", url: URL(string: simulator.baseURL)!, apiKey: Secret(clientKey ?? apiKey),
                pageSize: pageSize, timeout: timeout, maxRequestsPerSecond: 0)
            let client = UnipileClient(source: source, httpClient: HTTPClient.shared)
            let poller = SourcePoller(
                configuration: source, client: client, store: store, emitBaseline: emitBaseline,
                logger: logRecords.map { records in Logger(label: "test") { _ in RecordingLogHandler(records: records) } }
                    ?? Logger(label: "test"))
            return try await body(PipelineHarness(simulator: simulator, store: store, poller: poller, directory: directory))
        }
    }

    func poll() async -> PollOutcome { await poller.poll(router: everythingToStdout) }

    func events() async throws -> [JSONValue] {
        try await store.events(EventQuery()).map { try JSONValue.parse($0.json) }
    }

    func snapshot() async throws -> [JSONValue] {
        try await store.snapshotChats(source: "main").map(\.chat)
    }

    /// The ids of the simulator's chats, in its order.
    func chatIDs() async throws -> [String] {
        try await snapshot().compactMap { $0["id"]?.stringValue }
    }
}

@Suite("Pipeline against the simulator over loopback")
struct PipelineTests {
    @Test func baselineThenOneEventPerRealChange() async throws {
        try await PipelineHarness.with { h in
            #expect(await h.poll() == .complete(events: 0, deliveries: 0, baseline: true))
            let ids = try await h.chatIDs()
            try #require(ids.count == 30, "every chat of every page is in the snapshot")
            #expect(await h.poll() == .complete(events: 0, deliveries: 0, baseline: false))

            try await h.simulator.state.patch(id: ids[3], fieldsJSON: #"{"unread_count": 42, "archived": 1}"#)
            try await h.simulator.state.patch(id: ids[5], fieldsJSON: #"{"name": "Renamed <b>&</b> $(touch x)"}"#)
            _ = await h.simulator.state.remove(id: ids[7])
            try await h.simulator.state.upsert(chatJSON: #"{"object":"Chat","id":"new-chat","account_id":"acc_x","account_type":"WHATSAPP","name":"New","timestamp":"2030-01-01T00:00:00.000Z","unread_count":1,"archived":0,"muted_until":null,"read_only":0,"pinned":0,"x_unknown_field":{"kept":true}}"#)

            guard case .complete(let events, _, false) = await h.poll() else {
                Issue.record("poll did not complete")
                return
            }
            #expect(events == 3, "changed, renamed, added; the removed chat needs a second miss")
            var all = try await h.events()
            let byChat = Dictionary(grouping: all) { $0["chat_id"]?.stringValue ?? "" }
            let changed = try #require(byChat[ids[3]]?.first)
            #expect(changed["kinds"]?.arrayValue?.compactMap(\.stringValue).contains("chat.archived") == true)
            #expect(changed["changes"]?["unread_count"]?["to"] == .int(42))
            let renamed = try #require(byChat[ids[5]]?.first)
            #expect(renamed["kinds"] == .array([.string("chat.renamed")]))
            #expect(renamed["chat"]?["name"] == .string("Renamed <b>&</b> $(touch x)"))
            let added = try #require(byChat["new-chat"]?.first)
            #expect(added["type"] == .string("chat.added"))
            #expect(added["chat"]?["x_unknown_field"]?["kept"] == .bool(true), "unknown fields reach the event")
            #expect(added["previous"] == .null)

            _ = await h.poll()
            all = try await h.events()
            let removed = all.filter { $0["type"] == .string("chat.removed") }
            #expect(removed.count == 1)
            #expect(removed.first?["chat_id"] == .string(ids[7]))
            #expect(await h.poll() == .complete(events: 0, deliveries: 0, baseline: false), "nothing is reported twice")
        }
    }

    @Test func failuresInTheMiddleOfPagingChangeNothing() async throws {
        try await PipelineHarness.with { h in
            _ = await h.poll()
            let before = try await h.snapshot()
            let ids = try await h.chatIDs()
            try #require(!ids.isEmpty, "the baseline completed (a poll that timed out under load stored nothing)")
            try await h.simulator.state.patch(id: ids[0], fieldsJSON: #"{"unread_count": 9}"#)

            for fault in [
                SimulatedFault.error(status: 500, type: "errors/unexpected_error", page: 2),
                SimulatedFault(failure: .malformedBody, page: 3),
                SimulatedFault.error(status: 503, type: "errors/service_unavailable", page: 1),
            ] {
                await h.simulator.state.addFault(fault)
                guard case .failed(let reason, let authentication) = await h.poll() else {
                    Issue.record("a poll with a failing page must fail")
                    continue
                }
                #expect(!authentication)
                #expect(reason.contains("page"), "the message names the page: \(reason)")
                #expect(!reason.contains("test-key"))
                #expect(try await h.snapshot() == before, "the stored snapshot is unchanged")
                #expect(try await h.events().isEmpty)
            }
            // the next complete poll is compared with the last complete snapshot
            guard case .complete(1, _, false) = await h.poll() else {
                Issue.record("expected exactly one event after recovery")
                return
            }
        }
    }

    @Test func timeoutAbandonsThePoll() async throws {
        try await PipelineHarness.with(timeout: .milliseconds(300)) { h in
            _ = await h.poll()
            let before = try await h.snapshot()
            await h.simulator.state.addFault(SimulatedFault(failure: .none, delay: .seconds(2), page: 2))
            guard case .failed(let reason, _) = await h.poll() else {
                Issue.record("a page that times out must fail the poll")
                return
            }
            #expect(reason.lowercased().contains("time"), "\(reason)")
            #expect(try await h.snapshot() == before)
        }
    }

    @Test func wrongKeyIsOneAccountErrorThenRecovered() async throws {
        try await PipelineHarness.with(apiKey: "right-key", clientKey: "wrong-key") { h in
            for _ in 0..<3 {
                guard case .failed(_, true) = await h.poll() else {
                    Issue.record("a 401 is an authentication failure")
                    return
                }
            }
            let events = try await h.events()
            #expect(events.count == 1)
            #expect(events.first?["type"] == .string("account.error"))
            #expect(events.first?["error"]?["status"] == .int(401))
            #expect(events.first?["error"]?["type"] == .string("errors/invalid_credentials"))
            #expect(!(events.first?.compactString.contains("wrong-key") ?? true), "the key never appears")
        }
    }

    @Test func massVanishIsHeld() async throws {
        let records = LogRecords()
        try await PipelineHarness.with(chats: 20, logRecords: records) { h in
            _ = await h.poll()
            let ids = try await h.chatIDs()
            for id in ids.prefix(15) { _ = await h.simulator.state.remove(id: id) }
            _ = await h.poll()
            _ = await h.poll()
            #expect(try await h.events().isEmpty, "two suspicious polls: no removals yet")
            _ = await h.poll()
            #expect(try await h.events().count == 15, "believed on the third")
        }
        // The log says what each poll did: held twice, then removed (not "holding" again).
        let warnings = records.all.filter { $0.level == .warning }.map(\.message)
        #expect(warnings == [
            "15 of 20 known chats missing from this poll: holding removals until confirmed",
            "15 of 20 known chats missing from this poll: holding removals until confirmed",
            "15 of 20 known chats missing for 3 complete polls in a row: removing them",
        ])
    }
}
