import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Store
import StoreSQLite

/// Serves `GET /metrics` (Prometheus text) and `GET /healthz` on `http.listen`
/// (config.md), as a swift-service-lifecycle `Service` that runs next to the ``Bridge``.
///
/// `/healthz` answers 200 `{"status":"ok",...}` while every configured source has had
/// a complete poll within 3 of its intervals (a source counts as fine for its first 3
/// intervals after the server started watching it) and the store takes a write; else
/// 503 `{"status":"unhealthy","reasons":["source main: no complete poll for 95s"]}`.
/// Neither answer carries a secret, an error text from the API or any chat content:
/// only source names, times and fixed phrases.
///
/// The outbox gauges of ``BridgeMetrics`` are read from the store on every scrape and
/// every `refreshInterval`.
///
/// ```swift
/// let server = OperationsServer(
///     listen: HTTPListenConfiguration(host: "127.0.0.1", port: 9464), store: bridge.store,
///     metrics: metrics, sources: { configuration.sources }, logger: logger)
/// try await ServiceGroup(services: [server, bridge], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
package struct OperationsServer: Service {
    private let listen: HTTPListenConfiguration
    private let store: any RuntimeStore
    private let metrics: BridgeMetrics
    private let monitor: HealthMonitor
    private let refreshInterval: Duration
    private let logger: Logger
    private let onStarted: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - listen: host and port; port 0 lets the system choose (tests), see `onStarted`.
    ///   - store: the daemon's store: source records, outbox counts, the write check.
    ///   - metrics: what `/metrics` renders.
    ///   - sources: the configured sources, asked on every health check (so that a
    ///     reloaded configuration applies at once).
    ///   - refreshInterval: how often the store-backed gauges are read between scrapes.
    ///   - storeCheckTimeout: how long the write check waits for the write lock.
    ///   - now: the clock.
    ///   - onStarted: called once listening, with the bound port.
    package init(
        listen: HTTPListenConfiguration,
        store: any RuntimeStore,
        metrics: BridgeMetrics,
        sources: @escaping @Sendable () -> [SourceConfiguration],
        refreshInterval: Duration = .seconds(5),
        storeCheckTimeout: Duration = .seconds(2),
        logger: Logger = Logger(label: "chatbridge.http"),
        now: @escaping @Sendable () -> Date = { Date() },
        onStarted: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.listen = listen
        self.store = store
        self.metrics = metrics
        self.refreshInterval = refreshInterval
        self.logger = logger
        self.onStarted = onStarted
        monitor = HealthMonitor(
            store: store, sources: sources, storeCheckTimeout: storeCheckTimeout, now: now)
    }

    /// The answer `/healthz` would give now.
    package func health() async -> HealthReport {
        await monitor.report()
    }

    /// Serves until graceful shutdown or cancellation.
    ///
    /// - Throws: ``OperationsServerError`` when it cannot listen (the address is in use,
    ///   the host is not local) or the server fails.
    package func run() async throws {
        await monitor.startWatching()
        let router = Router()
        let metrics = metrics
        let store = store
        let monitor = monitor
        let logger = logger
        // One read of the store-backed gauges in flight, however many scrapes wait for it.
        let gaugeRefresh = SharedTask<String?> {
            do {
                try await metrics.refresh(from: store)
                return nil
            } catch {
                return store.reason(for: error)
            }
        }
        router.get("/metrics") { _, _ -> Response in
            // The counters are still worth serving when the store does not answer (in time):
            // the gauges keep their last value.
            if let problem = await gaugeRefresh.value(within: .seconds(2)) ?? "no answer within 2 s" {
                logger.warning("cannot read the store for /metrics: \(problem)")
            }
            return Self.response(.ok, contentType: BridgeMetrics.contentType, body: metrics.exposition())
        }
        router.get("/healthz") { _, _ -> Response in
            let report = await monitor.report()
            return Self.response(
                report.isHealthy ? .ok : .serviceUnavailable, contentType: "application/json",
                body: Array((report.json.compactString + "\n").utf8))
        }

        let listen = listen
        let onStarted = onStarted
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "chatbridge"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                logger.info(
                    "serving /metrics and /healthz", metadata: ["host": "\(listen.host)", "port": .stringConvertible(port)])
                await onStarted(port)
            },
            logger: logger)

        enum Finished { case server, refresher }
        do {
            try await withThrowingTaskGroup(of: Finished.self) { group in
                group.addTask {
                    // Runs its own ServiceGroup, which follows our graceful shutdown.
                    try await app.run()
                    return .server
                }
                group.addTask { [refreshInterval] in
                    try? await cancelWhenGracefulShutdown {
                        while true {
                            try await Task.sleep(for: refreshInterval)
                            try? await metrics.refresh(from: store)
                        }
                    }
                    return .refresher
                }
                while let finished = try await group.next() {
                    if finished == .server { group.cancelAll() }
                }
            }
        } catch is CancellationError {
            return
        } catch {
            if Task.isCancelled { return }
            let recognized = AddressInUseError.recognizing(
                error, host: listen.host, port: listen.port,
                advice: "set another port in http.listen of the config, or stop the program that holds it")
            throw OperationsServerError(host: listen.host, port: listen.port, reason: "\(recognized)")
        }
    }

    private static func response(_ status: HTTPResponse.Status, contentType: String, body: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The operations server could not listen, or failed while serving.
package struct OperationsServerError: Error, Sendable, Hashable, CustomStringConvertible {
    package var host: String
    package var port: Int
    /// What the network layer said (`bind(...): Address already in use`).
    package var reason: String
    package var description: String {
        "http.listen \(host):\(port): cannot serve /metrics and /healthz: \(reason)"
    }
}

// MARK: Health

/// What `/healthz` says: pure, from the configured sources, their stored records and
/// the result of the store's write check.
package struct HealthReport: Sendable, Hashable {
    /// One configured source, as the health check sees it.
    package struct Source: Sendable, Hashable {
        package var name: String
        package var lastSuccessAt: Date?
        /// Why this source makes the bridge unhealthy, or `nil`.
        package var problem: String?
    }

    /// A configured source and since when the health check has been watching it.
    package struct WatchedSource: Sendable, Hashable {
        package var name: String
        package var interval: Duration
        /// Process start, or when a reload added the source.
        package var watchedSince: Date
        package init(name: String, interval: Duration, watchedSince: Date) {
            self.name = name
            self.interval = interval
            self.watchedSince = watchedSince
        }
    }

    package var sources: [Source]
    /// Why the store is not usable (`store: not writable: database is locked`), or `nil`.
    package var storeProblem: String?
    package var checkedAt: Date

    /// Every reason the bridge is unhealthy, in a stable order (sources by
    /// configuration order, then the store); empty when healthy.
    package var reasons: [String] {
        sources.compactMap { source in source.problem.map { "source \(source.name): \($0)" } }
            + (storeProblem.map { [$0] } ?? [])
    }

    package var isHealthy: Bool { reasons.isEmpty }

    /// Healthy while every source has had a complete poll within 3 intervals (at least
    /// ``PollFreshness/minimumAllowance``), or is
    /// still within 3 intervals of being watched, and the store took a write.
    ///
    /// `records` is `nil` when the store could not be read: then no source is judged (its
    /// last poll is unknown, not missing) and `storeProblem` says why.
    package static func evaluate(
        sources: [WatchedSource], records: [String: SourceRecord]?, storeProblem: String?, now: Date
    ) -> HealthReport {
        let checked = sources.map { source -> Source in
            guard let records else { return Source(name: source.name, lastSuccessAt: nil, problem: nil) }
            let record = records[source.name]
            let allowed = PollFreshness.allowance(interval: source.interval)
            let success = record?.lastSuccessAt
            if let success, now.timeIntervalSince(success) <= allowed {
                return Source(name: source.name, lastSuccessAt: success, problem: nil)
            }
            let watching = now.timeIntervalSince(source.watchedSince)
            if watching <= allowed {
                return Source(name: source.name, lastSuccessAt: success, problem: nil)  // still starting
            }
            var problem = if let success {
                "no complete poll for \(PollFreshness.age(now.timeIntervalSince(success)))"
            } else {
                "no complete poll in the \(Int(watching))s since start"
            }
            // Fixed phrases only: the stored error text may quote what the API sent.
            if record?.accountError != nil {
                problem += " (the account or API key needs a person)"
            } else if record?.lastOutcome == "failed" {
                problem += " (the last poll failed)"
            }
            return Source(name: source.name, lastSuccessAt: success, problem: problem)
        }
        return HealthReport(sources: checked, storeProblem: storeProblem, checkedAt: now)
    }

    /// The body of `/healthz`: `status`, `reasons` (when unhealthy), and each source's
    /// last complete poll.
    package var json: JSONValue {
        var object: JSONObject = ["status": .string(isHealthy ? "ok" : "unhealthy")]
        if !isHealthy { object["reasons"] = .array(reasons.map(JSONValue.string)) }
        object["checked_at"] = .string(Timestamp.iso8601(checkedAt))
        object["store"] = .string(storeProblem == nil ? "writable" : "not writable")
        object["sources"] = .array(sources.map { source in
            .object([
                "name": .string(source.name),
                "ok": .bool(source.problem == nil),
                "last_success_at": source.lastSuccessAt.map { .string(Timestamp.iso8601($0)) } ?? .null,
            ])
        })
        return .object(object)
    }
}

/// Gathers what a ``HealthReport`` needs; an actor because concurrent `/healthz`
/// requests share the first-seen times and one write check in flight.
actor HealthMonitor {
    private let store: any RuntimeStore
    private let sources: @Sendable () -> [SourceConfiguration]
    private let storeCheckTimeout: Duration
    private let now: @Sendable () -> Date
    private var watchedSince: [String: Date] = [:]
    /// The write check: concurrent probes wait for the same one (a problem, or `nil`).
    private let writeCheck: SharedTask<String?>
    /// The read of the source records, shared the same way.
    private let recordsRead: SharedTask<Result<[SourceRecord], ReadFailure>>

    init(
        store: any RuntimeStore, sources: @escaping @Sendable () -> [SourceConfiguration], storeCheckTimeout: Duration,
        now: @escaping @Sendable () -> Date
    ) {
        self.store = store
        self.sources = sources
        self.storeCheckTimeout = storeCheckTimeout
        self.now = now
        writeCheck = SharedTask {
            do throws(StoreNotWritable) {
                try await store.checkWritable(timeout: storeCheckTimeout, now: Date())
                return nil
            } catch {
                return "store: not writable: \(error.reason)"
            }
        }
        recordsRead = SharedTask {
            do { return .success(try await store.sourceRecords()) } catch { return .failure(ReadFailure(reason: store.reason(for: error))) }
        }
    }

    /// Starts the grace period of every configured source (the server is starting).
    func startWatching() {
        _ = watched()
    }

    private func watched() -> [HealthReport.WatchedSource] {
        let current = now()
        return sources().map { source in
            let since = watchedSince[source.name] ?? current
            watchedSince[source.name] = since
            return HealthReport.WatchedSource(name: source.name, interval: source.interval, watchedSince: since)
        }
    }

    package func report() async -> HealthReport {
        let watched = watched()
        // Both reads are shared by concurrent probes and waited for at most `answerWithin`:
        // a database that stops answering (a paused server, a partition) must not hold the
        // probe, which answers 503 in time instead.
        let noAnswer = "store: no answer within \(answerWithin.secondsText) (the database may be paused or unreachable)"
        async let writeProblem = writeCheck.value(within: answerWithin)
        let records = await recordsRead.value(within: answerWithin)
        var readProblem: String?
        switch records {
        case .success?: break
        case .failure(let failure)?: readProblem = "store: cannot read the source records: \(failure.reason)"
        case nil: readProblem = noAnswer
        }
        let known = try? records?.get()
        let storeProblem: String? = switch await writeProblem {
        case .some(let problem): problem
        case .none: noAnswer
        }
        return HealthReport.evaluate(
            sources: watched, records: known.map { Dictionary($0.map { ($0.name, $0) }, uniquingKeysWith: { $1 }) },
            storeProblem: storeProblem ?? readProblem, now: now())
    }

    /// How long a probe waits for the store: the write check's own lock wait and a second.
    private var answerWithin: Duration { storeCheckTimeout + .seconds(1) }

    /// Why the source records could not be read, in the store's words.
    struct ReadFailure: Error { var reason: String }
}
