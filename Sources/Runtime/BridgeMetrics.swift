import Metrics
import Foundation
import Prometheus
import Synchronization
import Delivery
import Store
import StoreSQLite

/// The numbers an operator watches, recorded with swift-metrics into a Prometheus
/// registry that this value owns (no global `MetricsSystem.bootstrap`), and served as
/// Prometheus text by ``OperationsServer`` at `/metrics`.
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `chatbridge_polls_total` | counter | `source`, `outcome` (`complete`, `failed`) |
/// | `chatbridge_poll_duration_seconds` | histogram | `source` |
/// | `chatbridge_chats` | gauge | `source`: chats in the last complete poll |
/// | `chatbridge_events_total` | counter | `kind`: change kinds; the type for `account.*` events |
/// | `chatbridge_deliveries_total` | counter | `sink`, `outcome` (`delivered`, `retry`, `dead`) |
/// | `chatbridge_deliveries_pending` | gauge | `sink`: pending rows in the outbox |
/// | `chatbridge_deliveries_dead` | gauge | `sink`: dead rows still stored |
/// | `chatbridge_last_successful_poll_timestamp_seconds` | gauge | `source` |
///
/// The poller and the dispatcher record as things happen, once per poll and once per
/// attempt (never once per chat); the two outbox gauges and the last-success times are
/// read from the store by ``refresh(from:now:)`` (on every scrape and every few seconds).
///
/// ```swift
/// let metrics = BridgeMetrics()
/// metrics.recordCompletePoll(source: "main", duration: .milliseconds(850), chats: 1200,
///                            kindCounts: ["unread.increased": 3])
/// metrics.recordDelivery(sink: "team-slack", result: .delivered(status: 200))
/// let text = metrics.exposition()   // "# TYPE chatbridge_polls_total counter\n..."
/// ```
///
/// Label values are source names, sink names and event kinds: configuration and code,
/// never chat content or secrets.
package final class BridgeMetrics: DeliveryMetrics, Sendable {
    /// The registry the metrics live in; ``exposition()`` renders it.
    package let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Sinks whose outbox gauges were set before: a sink that vanished from the counts
    /// (its rows pruned) is set back to 0 instead of keeping its last value forever.
    private let knownSinks = Mutex<Set<String>>([])
    /// Sinks whose claimed-deliveries gauge was set before (set back to 0 when none are).
    let claimedSinks = Mutex<Set<String>>([])

    /// Metric names, for code and tests that look for them.
    package enum Name {
        package static let polls = "chatbridge_polls_total"
        package static let pollDuration = "chatbridge_poll_duration_seconds"
        package static let chats = "chatbridge_chats"
        package static let events = "chatbridge_events_total"
        package static let deliveries = "chatbridge_deliveries_total"
        package static let deliveriesPending = "chatbridge_deliveries_pending"
        package static let deliveriesDead = "chatbridge_deliveries_dead"
        package static let lastSuccessfulPoll = "chatbridge_last_successful_poll_timestamp_seconds"
        package static let suppressed = "chatbridge_matches_suppressed_total"
    }

    /// Buckets of the poll duration: a poll of a small workspace takes well under a
    /// second, one of 100k chats at 250 a page and 5 requests a second about 80 s.
    static let pollDurationBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600),
    ]

    /// - Parameter registry: where the metrics live; a fresh one by default, so that two
    ///   bridges (or two tests) in one process never share counters.
    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Name.pollDuration] = Self.pollDurationBuckets
        self.factory = factory
    }

    // MARK: Polls

    /// A poll that read every page and applied its snapshot.
    ///
    /// - Parameters:
    ///   - chats: distinct chats the poll listed.
    ///   - kindCounts: the events it stored, by kind (``PollApplication/kindCounts``).
    ///   - finishedAt: when it finished: the last successful poll time.
    package func recordCompletePoll(
        source: String, duration: Duration, chats: Int, kindCounts: [String: Int], finishedAt: Date = Date()
    ) {
        CoreMetrics.Counter(label: Name.polls, dimensions: [("source", source), ("outcome", "complete")], factory: factory)
            .increment()
        recordDuration(source: source, duration)
        CoreMetrics.Gauge(label: Name.chats, dimensions: [("source", source)], factory: factory).record(chats)
        CoreMetrics.Gauge(label: Name.lastSuccessfulPoll, dimensions: [("source", source)], factory: factory)
            .record(finishedAt.timeIntervalSince1970)
        recordEvents(kindCounts)
    }

    /// A poll that was abandoned (an API error, a timeout, a store error, shutdown).
    package func recordFailedPoll(source: String, duration: Duration) {
        CoreMetrics.Counter(label: Name.polls, dimensions: [("source", source), ("outcome", "failed")], factory: factory)
            .increment()
        recordDuration(source: source, duration)
    }

    /// Matches that sent nothing because their rule was throttled for the chat.
    package func recordSuppressed(_ suppressions: [PollApplication.Suppression]) {
        for suppression in suppressions {
            CoreMetrics.Counter(
                label: Name.suppressed, dimensions: [("rule", suppression.rule), ("reason", "throttle")],
                factory: factory
            ).increment()
        }
    }

    /// Events stored, by kind (the `account.error` a failed poll may store, too).
    package func recordEvents(_ kindCounts: [String: Int]) {
        for (kind, count) in kindCounts where count > 0 {
            CoreMetrics.Counter(label: Name.events, dimensions: [("kind", kind)], factory: factory)
                .increment(by: count)
        }
    }

    private func recordDuration(source: String, _ duration: Duration) {
        CoreMetrics.Timer(label: Name.pollDuration, dimensions: [("source", source)], factory: factory)
            .recordNanoseconds(duration.clampedNanoseconds)
    }

    // MARK: Deliveries

    /// One recorded delivery attempt of `sink`.
    package func recordDelivery(sink: String, result: DeliveryAttemptResult) {
        let outcome = switch result {
        case .delivered: "delivered"
        case .retry: "retry"
        case .dead: "dead"
        }
        CoreMetrics.Counter(label: Name.deliveries, dimensions: [("sink", sink), ("outcome", outcome)], factory: factory)
            .increment()
    }

    /// Sets the outbox gauges from the store's counts.
    package func updateDeliveryGauges(_ counts: [String: SinkDeliveryCounts]) {
        let sinks = knownSinks.withLock { known in
            known.formUnion(counts.keys)
            return known
        }
        for sink in sinks {
            let entry = counts[sink] ?? SinkDeliveryCounts()
            CoreMetrics.Gauge(label: Name.deliveriesPending, dimensions: [("sink", sink)], factory: factory)
                .record(entry.pending)
            CoreMetrics.Gauge(label: Name.deliveriesDead, dimensions: [("sink", sink)], factory: factory)
                .record(entry.dead)
        }
    }

    /// Sets the last-success gauges from the stored source records (they survive restarts).
    package func updateLastSuccessfulPolls(_ records: [SourceRecord]) {
        for record in records {
            guard let success = record.lastSuccessAt else { continue }
            CoreMetrics.Gauge(label: Name.lastSuccessfulPoll, dimensions: [("source", record.name)], factory: factory)
                .record(success.timeIntervalSince1970)
        }
    }

    /// Reads the outbox counts and source records and sets the gauges that come from
    /// the store. Two cheap reads; never writes.
    package func refresh(from store: any BridgeStore, now: Date = Date()) async throws {
        let counts = try await store.deliveryCounts(now: now, recentSince: now.addingTimeInterval(-86_400))
        updateDeliveryGauges(counts)
        updateLastSuccessfulPolls(try await store.sourceRecords())
        if let leasing = store as? any SourceLeasing { try await updateLeaseGauges(leasing) }
    }

    // MARK: Exposition

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    package func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    /// The content type of ``exposition()``.
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
