import Foundation
import Logging
import ServiceLifecycle
import ChatBridgeCore
import Delivery
import Store

/// Prunes the store in the background (config.md `retention`, store.md "Retention"):
/// shortly after start, then every `interval`, it deletes events and finished
/// deliveries older than the retention, old `polls` rows and ended throttle windows,
/// in small batches that polls and deliveries interleave with.
///
/// ```swift
/// let retention = RetentionService(store: bridge.store, retention: { configuration.retention }, logger: logger)
/// try await ServiceGroup(services: [bridge, retention], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
///
/// It runs until graceful shutdown or cancellation, and then returns (a prune in hand
/// stops after its current batch). A failed prune is logged and tried again at the next
/// interval; it never ends the service.
package struct RetentionService: Service {
    private let store: any StoreRetention
    private let retention: @Sendable () -> Duration
    private let interval: Duration
    private let firstRunAfter: Duration
    private let batchSize: Int
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let onPruned: @Sendable (PruneResult) async -> Void

    /// - Parameters:
    ///   - retention: how long to keep events and finished deliveries; read before each
    ///     run, so that a reloaded configuration applies at the next one.
    ///   - interval: time between runs (default 5 minutes).
    ///   - firstRunAfter: time from start to the first run (default 30 s: the first polls
    ///     go first).
    ///   - batchSize: rows per write transaction.
    ///   - now: the clock.
    ///   - onPruned: called after every completed run (tests wait on it).
    package init(
        store: any StoreRetention,
        retention: @escaping @Sendable () -> Duration,
        interval: Duration = .seconds(300),
        firstRunAfter: Duration = .seconds(30),
        batchSize: Int = 500,
        logger: Logger = Logger(label: "chatbridge.retention"),
        now: @escaping @Sendable () -> Date = { Date() },
        onPruned: @escaping @Sendable (PruneResult) async -> Void = { _ in }
    ) {
        self.store = store
        self.retention = retention
        self.interval = interval
        self.firstRunAfter = firstRunAfter
        self.batchSize = batchSize
        self.logger = logger
        self.now = now
        self.onPruned = onPruned
    }

    /// Keeps a fixed retention.
    package init(
        store: any StoreRetention, retention: Duration, interval: Duration = .seconds(300),
        firstRunAfter: Duration = .seconds(30), batchSize: Int = 500,
        logger: Logger = Logger(label: "chatbridge.retention")
    ) {
        self.init(
            store: store, retention: { retention }, interval: interval, firstRunAfter: firstRunAfter,
            batchSize: batchSize, logger: logger)
    }

    package func run() async throws {
        // Graceful shutdown cancels the sleeps and the prune in hand; either way the
        // service then returns normally, as ServiceGroup expects of a finished service.
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: firstRunAfter)
            while true {
                await pruneOnce()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One run: prunes what is older than the retention now. Logs what it deleted;
    /// never throws (a failure is logged and the next run tries again).
    @discardableResult
    package func pruneOnce() async -> PruneResult? {
        let keep = retention()
        let current = now()
        let cutoff = current.addingTimeInterval(-keep.seconds)
        let started = ContinuousClock.now
        do {
            let result = try await store.prune(olderThan: cutoff, now: current, batchSize: batchSize, checkpoint: true)
            let elapsed = ContinuousClock.now - started
            logger.log(
                level: result.total > 0 ? .info : .debug,
                "pruned \(result)",
                metadata: [
                    "cutoff": "\(Timestamp.iso8601(cutoff))", "seconds": .stringConvertible(elapsed.seconds),
                    "checkpointed": .stringConvertible(result.checkpointed),
                ])
            await onPruned(result)
            return result
        } catch is CancellationError {
            logger.debug("prune stopped by shutdown")
            return nil
        } catch {
            if Task.isCancelled { return nil }
            logger.error("prune failed; trying again in \(interval.seconds) s", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
