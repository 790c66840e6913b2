import AsyncHTTPClient
import ChatBridgeCore
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import ChatBridgeConfig
import Delivery
import Detect
import Formats
import Rules
import Store
import StoreSQLite
import Unipile

/// Everything `chatbridge run` runs, wired together: one poller per source, the
/// dispatcher, and the rules they share.
///
/// ```swift
/// let bridge = try Bridge(configuration: configuration, rules: rules, httpClient: .shared, logger: logger)
/// // cron: one complete poll of every source, then what is due
/// let result = try await bridge.runOnce(drainTimeout: .seconds(30))
/// // daemon, under swift-service-lifecycle (SIGTERM/SIGINT: graceful)
/// try await ServiceGroup(services: [bridge], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
/// ```
///
/// Polling and delivery run concurrently: a poll commits its events and outbox rows
/// and wakes the dispatcher; a slow webhook never delays detection.
package final class Bridge: Service, Sendable {
    package let store: any RuntimeStore
    /// What `/metrics` shows: polls, events and deliveries of this process.
    package let metrics: BridgeMetrics
    private let state: Mutex<State>
    private let httpClient: HTTPClient
    let logger: Logger

    /// When each source polls next, across reloads.
    private let schedule = Mutex<[String: (due: ContinuousClock.Instant, failures: Int)]>([:])
    private let reloads = ReloadSignal()
    /// Logs a store that cannot be reached once per outage (a shared PostgreSQL store).
    let outage = StoreOutageLog()

    /// What a reload replaces.
    struct State {
        var configuration: ChatBridgeConfiguration
        var rules: RuleSet
        var pollers: [String: SourcePoller]
        var dispatcher: Dispatcher
        /// Increases with every reload.
        var generation = 0
    }

    /// Opens the store and builds the pollers and the dispatcher.
    ///
    /// - Parameter synchronousFull: SQLite `synchronous = FULL` (survives a power loss,
    ///   an fsync per transaction) instead of `NORMAL` (survives a killed process).
    /// - Throws: ``StoreError`` when the store cannot be opened.
    package convenience init(
        configuration: ChatBridgeConfiguration, rules: RuleSet, httpClient: HTTPClient, logger: Logger,
        synchronousFull: Bool = false, metrics: BridgeMetrics = BridgeMetrics()
    ) throws {
        try self.init(
            configuration: configuration, rules: rules,
            store: SQLiteStore(path: configuration.storePath, synchronousFull: synchronousFull),
            httpClient: httpClient, logger: logger, metrics: metrics)
    }

    /// Builds the pollers and the dispatcher around a store already open (SQLite, or a
    /// PostgreSQL store shared with other instances: ``BridgeStores/open(_:synchronousFull:readOnly:logger:)``).
    package init(
        configuration: ChatBridgeConfiguration, rules: RuleSet, store: any RuntimeStore, httpClient: HTTPClient,
        logger: Logger, metrics: BridgeMetrics = BridgeMetrics()
    ) {
        self.store = store
        self.metrics = metrics
        self.httpClient = httpClient
        self.logger = logger
        state = Mutex(Self.makeState(
            configuration: configuration, rules: rules, store: store, httpClient: httpClient, logger: logger,
            metrics: metrics, previous: nil))
    }

    private static func makeState(
        configuration: ChatBridgeConfiguration, rules: RuleSet, store: any RuntimeStore, httpClient: HTTPClient,
        logger: Logger, metrics: BridgeMetrics, previous: State?
    ) -> State {
        var pollers: [String: SourcePoller] = [:]
        for source in configuration.sources {
            if let old = previous?.pollers[source.name], old.configuration == source {
                pollers[source.name] = old  // keeps its in-memory digests
            } else {
                pollers[source.name] = SourcePoller(
                    configuration: source, client: UnipileClient(source: source, httpClient: httpClient),
                    store: store, emitBaseline: configuration.baseline == .emit, logger: logger, metrics: metrics)
            }
        }
        var sinks: [String: any DeliverySink] = [:]
        for (name, sink) in configuration.sinks {
            sinks[name] = makeSink(name: name, configuration: sink, httpClient: httpClient)
        }
        var templates: [String: DeliveryTemplate] = [:]
        var quietHours: [String: QuietHours] = [:]
        for rule in rules.rules {
            templates[rule.name] = rule.template
            quietHours[rule.name] = rule.quietHours
        }
        let delivery = configuration.delivery
        let dispatcher = Dispatcher(
            queue: store, sinks: sinks,
            policy: RetryPolicy(
                maxAttempts: delivery.maxAttempts, initialBackoff: delivery.initialBackoff,
                maxBackoff: delivery.maxBackoff),
            concurrency: delivery.concurrency, ruleTemplates: templates, quietHours: quietHours, logger: logger,
            metrics: metrics)
        return State(configuration: configuration, rules: rules, pollers: pollers, dispatcher: dispatcher)
    }

    private var current: State { state.withLock { $0 } }

    /// Where a poll's or the dispatcher's tasks run: one of the HTTP client's event loops,
    /// the next in turn, so that concurrent polls spread over them (``EventLoopTaskExecutor``).
    private func eventLoopExecutor() -> EventLoopTaskExecutor {
        EventLoopTaskExecutor(eventLoop: httpClient.eventLoopGroup.next())
    }

    /// The configuration in force (the last one loaded without errors).
    package var configuration: ChatBridgeConfiguration { state.withLock { $0.configuration } }

    // MARK: Once (cron)

    /// What `chatbridge run --once` did.
    package struct OnceResult: Sendable {
        /// Sources whose poll failed, with why.
        package var failedSources: [String: String]
        package var allSourcesComplete: Bool { failedSources.isEmpty }
    }

    /// One complete poll of every source (concurrently), then one attempt at every due
    /// delivery and the retries that fall due within `drainTimeout`; what is left stays
    /// pending for the next run.
    ///
    /// - Throws: ``Dispatcher/OutputClosed`` when standard output was closed.
    package func runOnce(drainTimeout: Duration) async throws -> OnceResult {
        let state = current
        let router = state.rules.router(logger: logger)
        let leasing = store as? any SourceLeasing
        let outcomes = await withTaskGroup(of: (String, PollOutcome).self) { group in
            for (name, poller) in state.pollers {
                // With a shared store, a source another instance holds is its to poll.
                if let leasing, (try? await leasing.acquireLease(source: name)) == nil {
                    logger.info("source \(name) is polled by another instance", metadata: ["source": "\(name)"])
                    continue
                }
                group.addTask(executorPreference: eventLoopExecutor()) { (name, await poller.poll(router: router)) }
            }
            var outcomes: [String: PollOutcome] = [:]
            for await (name, outcome) in group { outcomes[name] = outcome }
            return outcomes
        }
        if let leasing { try? await leasing.releaseAll() }
        _ = try await withTaskExecutorPreference(eventLoopExecutor()) { try await state.dispatcher.drain(timeout: drainTimeout) }
        // From cron there is no background pruning: one pass of the same service per run.
        await RetentionService(store: store, retention: state.configuration.retention, logger: logger).pruneOnce()
        var failed: [String: String] = [:]
        for (name, outcome) in outcomes {
            if case .failed(let reason, _) = outcome { failed[name] = reason }
        }
        return OnceResult(failedSources: failed)
    }

    // MARK: Daemon

    /// Polls every source on its interval and delivers, until graceful shutdown (the poll
    /// in hand finishes; then delivery stops, leaving what is unsent pending) or
    /// cancellation. ``reload(configuration:rules:)`` swaps in new settings between polls.
    ///
    /// - Throws: ``Dispatcher/OutputClosed`` when standard output was closed.
    package func run() async throws {
        guard let leasing = store as? any SourceLeasing else { return try await runGenerations() }
        // A store shared with other instances: renew this instance's leases while it runs,
        // and hand them back on the way out so that the others take over at once.
        let keeper = Task { await keepLeases(leasing) }
        defer { keeper.cancel() }
        try await runGenerations()
        keeper.cancel()
        do {
            try await leasing.releaseAll()
        } catch {
            logger.warning("could not hand back the source leases: \(store.reason(for: error))")
        }
    }

    private func runGenerations() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let (state, generation) = self.state.withLock { ($0, $0.generation) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask(executorPreference: eventLoopExecutor()) { try await state.dispatcher.run() }
                group.addTask { [self] in
                    await withTaskGroup(of: Void.self) { sources in
                        for poller in state.pollers.values {
                            sources.addTask {
                                await self.pollLoop(poller, dispatcher: state.dispatcher, generation: generation)
                            }
                        }
                    }
                    // The poll loops end on graceful shutdown or reload: then this
                    // generation's dispatcher finishes the deliveries in hand and returns.
                    state.dispatcher.finishInFlight()
                }
                // Cancellation (a second signal, or the shutdown deadline) cuts attempts
                // short instead; a closed stdout ends everything at once.
                defer { group.cancelAll() }
                while try await group.next() != nil {}
            }
        }
    }

    /// Replaces the configuration and rules (SIGHUP). Sources whose settings did not
    /// change keep their in-memory snapshot digests and their schedule; a source whose
    /// filters changed rebaselines on its next poll (events.md). Takes effect after the
    /// polls in hand.
    package func reload(configuration: ChatBridgeConfiguration, rules: RuleSet) {
        let unapplied = state.withLock { state in
            let unapplied = configuration.keysNeedingRestart(from: state.configuration)
            var next = Self.makeState(
                configuration: configuration, rules: rules, store: store, httpClient: httpClient, logger: logger,
                metrics: metrics, previous: state)
            next.generation = state.generation + 1
            state = next
            return unapplied
        }
        reloads.advance()
        logger.notice("reloaded: \(configuration.sources.count) sources, \(rules.rules.count) rules")
        if !unapplied.isEmpty {
            logger.warning(
                "reload kept the running \(unapplied.joined(separator: " and ")): a change there takes effect at the next start")
        }
    }

    private func pollLoop(_ poller: SourcePoller, dispatcher: Dispatcher, generation: Int) async {
        let configuration = poller.configuration
        let name = configuration.name
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            // Wait for this source's turn; a reload or a shutdown ends the wait.
            if let due = schedule.withLock({ $0[name]?.due }), due > .now {
                let reloaded = await sleepUntil(due, unlessReloadedPast: generation)
                if reloaded || Task.isCancelled || Task.isShuttingDownGracefully { return }
            }
            guard state.withLock({ $0.generation }) == generation else { return }
            let started = ContinuousClock.now
            if let leasing = store as? any SourceLeasing, await !mayPoll(name, leasing: leasing) {
                // Another instance polls it: look again within one interval (and one lease).
                let wait = min(configuration.interval, leasing.leaseDuration)
                schedule.withLock { $0[name] = (due: started + wait, failures: 0) }
                continue
            }
            let router = state.withLock { $0.rules }.router(logger: logger)
            let outcome = await withTaskExecutorPreference(eventLoopExecutor()) { await poller.poll(router: router) }
            let failures: Int
            switch outcome {
            case .complete(_, let deliveries, _):
                failures = 0
                if deliveries > 0 { dispatcher.notifyNewDeliveries() }
            case .failed:
                failures = (schedule.withLock { $0[name]?.failures } ?? 0) + 1
                dispatcher.notifyNewDeliveries()  // an account.error may have been queued
            }
            if let leasing = store as? any SourceLeasing { await spreadLoad(after: name, leasing: leasing) }
            let wait = SnapshotRules.backoff(interval: configuration.interval, consecutiveFailures: failures)
            // Up to 10% jitter, so that many sources do not poll in lockstep.
            let jitter = configuration.interval * Double.random(in: 0...0.1)
            schedule.withLock { $0[name] = (due: started + wait + jitter, failures: failures) }
        }
    }

    /// Sleeps until `deadline`; returns early (and `true`) when a reload made a newer
    /// generation than `generation`, or on graceful shutdown or cancellation.
    private func sleepUntil(_ deadline: ContinuousClock.Instant, unlessReloadedPast generation: Int) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await cancelWhenGracefulShutdown {
                    try await Task.sleep(until: deadline, clock: .continuous)
                }
                return false
            }
            group.addTask { [reloads] in
                await reloads.wait(past: generation)
                return !Task.isCancelled
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// Counts reloads and wakes whoever waits for the next one.
final class ReloadSignal: Sendable {
    private let generation = Mutex(0)
    private let wakeup = Wakeup()

    func advance() {
        generation.withLock { $0 += 1 }
        wakeup.signal()
    }

    /// Returns once the generation is greater than `generation`, or on cancellation.
    func wait(past generation: Int) async {
        while self.generation.withLock({ $0 }) <= generation, !Task.isCancelled {
            await wakeup.wait(timeout: nil)
        }
    }
}
