import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import GRDB
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
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

/// A clock the test moves by hand.
private final class ManualClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date = Date()) { current = Mutex(start) }
    func now() -> Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Writes polls into a store the way a poller does (a few small chats, no network).
private struct StorePolls {
    let store: SQLiteStore
    var source = "main"
    let fingerprint = #"{"account_ids":[],"account_type":null,"unread":null}"#

    static func chat(_ id: String) -> String {
        #"{"object":"Chat","id":"\#(id)","account_id":"acc","account_type":"LINKEDIN","name":"Chat \#(id)"}"#
    }

    /// A complete poll listing `ids` that finished at `finishedAt`. The first one is the
    /// baseline (`emit`: every chat becomes a `chat.added` routed by `router`).
    @discardableResult
    func complete(
        _ ids: [String], at finishedAt: Date, emit: Bool = false, router: @escaping EventRouter = everythingToStdout
    ) async throws -> PollApplication {
        var driver = PollDriver(store: store, source: source)
        driver.emitBaseline = emit
        return try await driver.poll(ids.map(Self.chat), at: finishedAt, router: router)
    }

    /// A failed poll that finished at `finishedAt`, with `error` as its stored reason.
    func fail(at finishedAt: Date, error: String) async throws {
        _ = try await store.recordFailedPoll(
            FailedPoll(
                source: source, filterFingerprint: fingerprint, startedAt: finishedAt.addingTimeInterval(-1),
                finishedAt: finishedAt, pages: 0, items: 0, error: error),
            router: everythingToStdout)
    }
}

/// What a GET answered.
private struct HTTPAnswer {
    var status: Int
    var contentType: String?
    var body: String

    var json: JSONValue? { try? JSONValue.parse(body) }
}

/// GET on loopback, with a timeout.
private func httpGet(port: Int, _ path: String) async throws -> HTTPAnswer {
    let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 8 << 20)
    return HTTPAnswer(
        status: Int(response.status.code), contentType: response.headers.first(name: "content-type"),
        body: String(buffer: body))
}

/// The value of one series (`name{labels}` exactly as rendered) in Prometheus text.
private func prometheusValue(_ series: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// Runs `server` (made with the `onStarted` it is given) in a child task, runs `body`
/// with its port once it listens, then stops it.
private func withOperationsServer<T: Sendable>(
    _ makeServer: (@escaping @Sendable (Int) async -> Void) -> OperationsServer,
    _ body: (Int) async throws -> T
) async throws -> T {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let server = makeServer { port in continuation.yield(port) }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            defer { continuation.finish() }
            try await server.run()
        }
        defer { group.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await group.next()
            throw StoreError(path: "", message: "the operations server stopped before listening")
        }
        return try await body(port)
    }
}

/// Whether a TCP connection to 127.0.0.1:`port` is accepted.
private func acceptsConnections(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return result == 0
}

private let loopback = HTTPListenConfiguration(host: "127.0.0.1", port: 0)

private func source(_ name: String, interval: Duration = .seconds(30)) -> SourceConfiguration {
    SourceConfiguration(
        name: name, url: URL(string: "http://127.0.0.1:9")!, apiKey: Secret("sk-operations-test-key"),
        interval: interval)
}

@Suite("Operations: /metrics and /healthz", .timeLimit(.minutes(1)))
struct OperationsServerTests {
    @Test func metricsServesPrometheusTextWithEveryMetric() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("state/chatbridge.sqlite"))
        let metrics = BridgeMetrics()
        // Three pending deliveries for `hook`, in the store, as a baseline with `emit` makes them.
        try await StorePolls(store: store).complete(
            ["a", "b", "c"], at: Date(), emit: true, router: { _ in [OutboxRoute(rule: "all", sinks: ["hook"])] })
        metrics.recordCompletePoll(
            source: "main", duration: .milliseconds(1500), chats: 3, kindCounts: ["chat.added": 3],
            typeCounts: ["chat.added": 3])
        metrics.recordFailedPoll(source: "main", duration: .milliseconds(20))
        metrics.recordFailedPoll(source: "main", duration: .milliseconds(20), stopped: true)
        metrics.recordEvents(source: "main", typeCounts: ["account.error": 1], kindCounts: [:])
        metrics.recordUnipileResponse(source: "main", status: 200)
        metrics.recordUnipileResponse(source: "main", status: 200)
        metrics.recordUnipileResponse(source: "main", status: 401)
        metrics.recordDelivery(sink: "hook", result: .delivered(status: 200))
        metrics.recordDeliveryLatency(sink: "hook", seconds: 0.3)
        metrics.recordDeliveryLatency(sink: "hook", seconds: 40)
        metrics.recordDelivery(sink: "hook", result: .retry(notBefore: Date(), status: 503, error: "down"))
        metrics.recordDelivery(sink: "hook", result: .dead(status: 410, error: "gone"))

        try await withOperationsServer({ started in
            OperationsServer(
                listen: loopback, store: store, metrics: metrics, sources: { [source("main")] }, onStarted: started)
        }) { port in
            let answer = try await httpGet(port: port, "/metrics")
            #expect(answer.status == 200)
            #expect(answer.contentType?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = answer.body
            for name in [
                "chatbridge_polls_total", "chatbridge_poll_duration_seconds", "chatbridge_chats",
                "chatbridge_events_total", "chatbridge_event_kinds_total", "chatbridge_delivery_attempts_total",
                "chatbridge_delivery_latency_seconds", "chatbridge_deliveries_pending",
                "chatbridge_deliveries_dead", "chatbridge_last_successful_poll_timestamp_seconds",
                "chatbridge_unipile_requests_total", "chatbridge_build_info",
            ] {
                #expect(text.contains("# TYPE \(name) "), "\(name) is exposed")
                #expect(text.contains("# HELP \(name) "), "\(name) has help")
            }
            #expect(prometheusValue(#"chatbridge_build_info{version="\#(ChatBridgeVersion.current)"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_unipile_requests_total{source="main",status="200"}"#, in: text) == 2)
            #expect(prometheusValue(#"chatbridge_unipile_requests_total{source="main",status="401"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_delivery_latency_seconds_count{sink="hook"}"#, in: text) == 2)
            #expect(prometheusValue(#"chatbridge_delivery_latency_seconds_bucket{sink="hook",le="0.5"}"#, in: text) == 1)
            #expect(!text.contains("chatbridge_deliveries_total"))
            #expect(text.contains("# TYPE chatbridge_poll_duration_seconds histogram"))
            #expect(prometheusValue(#"chatbridge_polls_total{source="main",outcome="complete"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_polls_total{source="main",outcome="failed"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_polls_total{source="main",outcome="stopped"}"#, in: text) == 1, "a shutdown is no failure")
            #expect(prometheusValue(#"chatbridge_poll_duration_seconds_count{source="main"}"#, in: text) == 3)
            #expect(prometheusValue(#"chatbridge_poll_duration_seconds_bucket{source="main",le="1.0"}"#, in: text) == 2)
            #expect(prometheusValue(#"chatbridge_chats{source="main"}"#, in: text) == 3)
            #expect(prometheusValue(#"chatbridge_events_total{source="main",type="chat.added"}"#, in: text) == 3)
            #expect(prometheusValue(#"chatbridge_events_total{source="main",type="account.error"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_event_kinds_total{kind="chat.added"}"#, in: text) == 3)
            for outcome in ["delivered", "retry", "dead"] {
                #expect(prometheusValue(#"chatbridge_delivery_attempts_total{sink="hook",outcome="\#(outcome)"}"#, in: text) == 1)
            }
            // Read from the store on the scrape: the three rows the baseline queued.
            #expect(prometheusValue(#"chatbridge_deliveries_pending{sink="hook"}"#, in: text) == 3)
            #expect(prometheusValue(#"chatbridge_deliveries_dead{sink="hook"}"#, in: text) == 0)
            let lastSuccess = try #require(
                prometheusValue(#"chatbridge_last_successful_poll_timestamp_seconds{source="main"}"#, in: text))
            #expect(abs(lastSuccess - Date().timeIntervalSince1970) < 600)

            let missing = try await httpGet(port: port, "/nowhere")
            #expect(missing.status == 404)
        }
    }

    @Test func healthzGivesANewSourceThreeIntervalsThenSaysItNeverPolled() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let clock = ManualClock()
        try await withOperationsServer({ started in
            OperationsServer(
                listen: loopback, store: store, metrics: BridgeMetrics(), sources: { [source("main")] },
                now: clock.now, onStarted: started)
        }) { port in
            let starting = try await httpGet(port: port, "/healthz")
            #expect(starting.status == 200, "a source is given three intervals after start")
            #expect(starting.contentType == "application/json")
            #expect(starting.json?["status"] == .string("ok"))

            clock.advance(by: 100)  // past 3 × 30 s
            let stale = try await httpGet(port: port, "/healthz")
            #expect(stale.status == 503)
            #expect(stale.json?["status"] == .string("unhealthy"))
            #expect(stale.json?["reasons"] == .array([.string("source main: no complete poll in the 100s since start")]))
        }
    }

    @Test func healthzFollowsTheStoredPolls() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let polls = StorePolls(store: store)
        let clock = ManualClock()
        let secretMarker = "sk-operations-test-key"
        try await withOperationsServer({ started in
            OperationsServer(
                listen: loopback, store: store, metrics: BridgeMetrics(),
                sources: { [source("main"), source("side", interval: .seconds(600))] }, now: clock.now,
                onStarted: started)
        }) { port in
            // A poll from a previous run, long ago; the process has now run for 100 s.
            try await polls.complete(["a", "b"], at: clock.now().addingTimeInterval(-1000))
            clock.advance(by: 100)
            let stale = try await httpGet(port: port, "/healthz")
            #expect(stale.status == 503)
            #expect(stale.json?["reasons"] == .array([.string("source main: no complete poll for 1100s")]),
                    "side (600 s interval) is still within its grace period")

            try await polls.fail(at: clock.now(), error: "HTTP 500 from the API: \(secretMarker) <chat name>")
            let failing = try await httpGet(port: port, "/healthz")
            #expect(failing.status == 503)
            #expect(failing.json?["reasons"] == .array([
                .string("source main: no complete poll for 1100s (the last poll failed)"),
            ]))
            #expect(!failing.body.contains(secretMarker), "the stored error text never reaches /healthz")
            #expect(!failing.body.contains("chat name"))

            try await polls.complete(["a", "b"], at: clock.now())
            let healthy = try await httpGet(port: port, "/healthz")
            #expect(healthy.status == 200)
            #expect(healthy.json?["status"] == .string("ok"))
            #expect(healthy.json?["reasons"] == nil)
            #expect(healthy.json?["sources"]?.arrayValue?.first?["last_success_at"] == .string(Timestamp.iso8601(clock.now())))
        }
    }

    @Test func healthzSaysWhenTheStoreTakesNoWrites() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("chatbridge.sqlite")
        let store = try SQLiteStore(path: path)
        try await StorePolls(store: store).complete(["a"], at: Date())
        try await withOperationsServer({ started in
            OperationsServer(
                listen: loopback, store: store, metrics: BridgeMetrics(), sources: { [source("main")] },
                storeCheckTimeout: .milliseconds(100), onStarted: started)
        }) { port in
            #expect(try await httpGet(port: port, "/healthz").status == 200)

            // Another connection holds the write lock (across accesses: GRDB must allow it).
            var configuration = Configuration()
            configuration.allowsUnsafeTransactions = true
            let blocker = try DatabaseQueue(path: path, configuration: configuration)
            try await blocker.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
            let locked = try await httpGet(port: port, "/healthz")
            try await blocker.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
            #expect(locked.status == 503)
            #expect(locked.json?["store"] == .string("not writable"))
            let reasons = locked.json?["reasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(reasons.count == 1)
            #expect(reasons.first?.hasPrefix("store: not writable: database is locked") == true, "\(reasons)")
            #expect(!locked.body.contains(path), "no file path in the answer")

            #expect(try await httpGet(port: port, "/healthz").status == 200, "healthy again once the lock is gone")
        }
    }

    @Test func healthzCountsASourceAddedByAReloadFromWhenItAppeared() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let clock = ManualClock()
        let configured = Mutex([source("main")])
        try await StorePolls(store: store).complete(["a"], at: clock.now())
        try await withOperationsServer({ started in
            OperationsServer(
                listen: loopback, store: store, metrics: BridgeMetrics(), sources: { configured.withLock { $0 } },
                now: clock.now, onStarted: started)
        }) { port in
            clock.advance(by: 60)
            configured.withLock { $0.append(source("added")) }
            #expect(try await httpGet(port: port, "/healthz").status == 200)
            clock.advance(by: 89)  // 149 s after start, 89 s after the reload
            try await StorePolls(store: store).complete(["a"], at: clock.now())
            #expect(try await httpGet(port: port, "/healthz").status == 200)
            clock.advance(by: 2)
            let late = try await httpGet(port: port, "/healthz")
            #expect(late.status == 503)
            #expect(late.json?["reasons"] == .array([.string("source added: no complete poll in the 91s since start")]))
        }
    }

    @Test func aSecondServerOnTheSamePortFailsWithAClearError() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        try await withOperationsServer({ started in
            OperationsServer(
                listen: loopback, store: store, metrics: BridgeMetrics(), sources: { [] }, onStarted: started)
        }) { port in
            let second = OperationsServer(
                listen: HTTPListenConfiguration(host: "127.0.0.1", port: port), store: store,
                metrics: BridgeMetrics(), sources: { [] })
            let error = await #expect(throws: OperationsServerError.self) { try await second.run() }
            #expect(error?.description.hasPrefix("http.listen 127.0.0.1:\(port): cannot serve /metrics and /healthz:") == true)
        }
    }

    @Test func gracefulShutdownStopsTheServerAndTheService() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = OperationsServer(
            listen: loopback, store: store, metrics: BridgeMetrics(), sources: { [] },
            refreshInterval: .milliseconds(50), onStarted: { continuation.yield($0) })
        let retention = RetentionService(store: store, retention: .seconds(3600), firstRunAfter: .zero)
        let group = ServiceGroup(services: [server, retention], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            #expect(try await httpGet(port: port, "/healthz").status == 200)
            #expect(acceptsConnections(port: port))
            await group.triggerGracefulShutdown()
            // Ends without an error; the time limit of the suite bounds the wait.
            try await tasks.next()
            // A plain connect: an HTTP client's pool would retry refused connections.
            #expect(!acceptsConnections(port: port), "nothing listens on the port any more")
        }
    }

    @Test func pollerAndDispatcherRecordWhatHappened() async throws {
        let metrics = BridgeMetrics()
        let options = SimulatorOptions(apiKey: "test-key", chats: 5, seed: 3)
        try await UnipileSimulator.withRunning(options) { simulator in
            let dir = TemporaryDirectory()
            let store = try SQLiteStore(path: dir.file("chatbridge.sqlite"))
            func poller(name: String, key: String) -> SourcePoller {
                let source = SourceConfiguration(
                    name: name, url: URL(string: simulator.baseURL)!, apiKey: Secret(key), pageSize: 2,
                    timeout: .seconds(5), maxRequestsPerSecond: 0)
                return SourcePoller(
                    configuration: source, client: UnipileClient(source: source, httpClient: HTTPClient.shared),
                    store: store, emitBaseline: true, logger: Logger(label: "test"), metrics: metrics)
            }
            let router: EventRouter = { _ in [OutboxRoute(rule: "all", sinks: ["ok", "failing"])] }
            #expect(await poller(name: "main", key: "test-key").poll(router: router).isComplete)
            #expect(await !poller(name: "wrong", key: "not-the-key").poll(router: router).isComplete)

            let dispatcher = Dispatcher(
                queue: store,
                sinks: [
                    "ok": try ExecSink(name: "ok", argv: ["/bin/true"]),
                    "failing": try ExecSink(name: "failing", argv: ["/bin/false"]),
                ],
                policy: RetryPolicy(maxAttempts: 1), concurrency: 2,
                logger: Logger(label: "test"), metrics: metrics)
            try await dispatcher.drain(timeout: .seconds(20))

            let text = String(decoding: metrics.exposition(), as: UTF8.self)
            #expect(prometheusValue(#"chatbridge_polls_total{source="main",outcome="complete"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_polls_total{source="wrong",outcome="failed"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_chats{source="main"}"#, in: text) == 5)
            #expect(prometheusValue(#"chatbridge_poll_duration_seconds_count{source="main"}"#, in: text) == 1)
            #expect(prometheusValue(#"chatbridge_events_total{source="main",type="chat.added"}"#, in: text) == 5)
            #expect(prometheusValue(#"chatbridge_event_kinds_total{kind="chat.added"}"#, in: text) == 5)
            #expect(prometheusValue(#"chatbridge_events_total{source="wrong",type="account.error"}"#, in: text) == 1)
            // Three pages of two for the five chats; one 401 for the wrong key.
            #expect(prometheusValue(#"chatbridge_unipile_requests_total{source="main",status="200"}"#, in: text) == 3)
            #expect(prometheusValue(#"chatbridge_unipile_requests_total{source="wrong",status="401"}"#, in: text) == 1)
            // 5 chat.added + 1 account.error, each to both sinks; one attempt allowed, so
            // every delivery to /bin/false is dead at once.
            #expect(prometheusValue(#"chatbridge_delivery_attempts_total{sink="ok",outcome="delivered"}"#, in: text) == 6)
            #expect(prometheusValue(#"chatbridge_delivery_attempts_total{sink="failing",outcome="dead"}"#, in: text) == 6)
            #expect(prometheusValue(#"chatbridge_delivery_latency_seconds_count{sink="ok"}"#, in: text) == 6)
            #expect(prometheusValue(#"chatbridge_delivery_latency_seconds_count{sink="failing"}"#, in: text) == nil)
            #expect(!text.contains("test-key"), "no secret in the metrics")
        }
    }
}
