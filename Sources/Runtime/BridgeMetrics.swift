import Metrics
import Foundation
import Prometheus
import Synchronization
import ChatBridgeCore
import Delivery
import Store
import StoreSQLite

/// The numbers an operator watches, recorded with swift-metrics into a Prometheus
/// registry that this value owns (no global `MetricsSystem.bootstrap`), and served as
/// Prometheus text by ``OperationsServer`` at `/metrics`.
///
/// | metric | type | labels |
/// | --- | --- | --- |
/// | `chatbridge_polls_total` | counter | `source`, `outcome` (`complete`, `failed`, `stopped`) |
/// | `chatbridge_poll_duration_seconds` | histogram | `source` |
/// | `chatbridge_chats` | gauge | `source`: chats in the last complete poll |
/// | `chatbridge_events_total` | counter | `source`, `type`: each event stored, once |
/// | `chatbridge_event_kinds_total` | counter | `kind`: the change kinds of those events |
/// | `chatbridge_delivery_attempts_total` | counter | `sink`, `outcome` (`delivered`, `retry`, `dead`): attempts, not deliveries |
/// | `chatbridge_delivery_latency_seconds` | histogram | `sink`: from detection to a successful delivery |
/// | `chatbridge_deliveries_pending` | gauge | `sink`: pending rows in the outbox |
/// | `chatbridge_deliveries_dead` | gauge | `sink`: dead rows still stored |
/// | `chatbridge_last_successful_poll_timestamp_seconds` | gauge | `source` |
/// | `chatbridge_matches_suppressed_total` | counter | `rule`, `reason` |
/// | `chatbridge_unipile_requests_total` | counter | `source`, `status`: answers of the API by HTTP status |
/// | `chatbridge_build_info` | gauge | `version`: always 1 |
///
/// Every metric carries its `# HELP` line (``help``), so that `promtool check metrics`
/// finds nothing to say.
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
        package static let eventKinds = "chatbridge_event_kinds_total"
        package static let deliveries = "chatbridge_delivery_attempts_total"
        package static let deliveryLatency = "chatbridge_delivery_latency_seconds"
        package static let unipileRequests = "chatbridge_unipile_requests_total"
        package static let buildInfo = "chatbridge_build_info"
        package static let deliveriesPending = "chatbridge_deliveries_pending"
        package static let deliveriesDead = "chatbridge_deliveries_dead"
        package static let lastSuccessfulPoll = "chatbridge_last_successful_poll_timestamp_seconds"
        package static let suppressed = "chatbridge_matches_suppressed_total"
    }

    /// The `# HELP` text of each metric.
    package static let help: [String: String] = [
        Name.polls: "Polls of a source, by outcome (complete, failed, or stopped by a shutdown).",
        Name.pollDuration: "Time from the first request of a poll to its end.",
        Name.chats: "Chats in the last complete poll of a source.",
        Name.events: "Events stored, each once, by source and type.",
        Name.eventKinds: "Change kinds of the events stored.",
        Name.deliveries: "Delivery attempts, by sink and outcome (delivered, retry, dead).",
        Name.deliveryLatency: "Time from an event's detection to its successful delivery, by sink.",
        Name.deliveriesPending: "Deliveries waiting in the outbox, by sink.",
        Name.deliveriesDead: "Dead deliveries still stored, by sink.",
        Name.lastSuccessfulPoll: "When the last complete poll of a source ended (Unix time).",
        Name.suppressed: "Rule matches that sent nothing, by rule and reason.",
        Name.unipileRequests: "Answers of the Unipile API, by source and HTTP status.",
        Name.buildInfo: "The running chatbridge's version; always 1.",
        LeaseName.leasesHeld: "Sources whose lease this instance holds now (a shared store).",
        LeaseName.leasesLost: "Times this instance found a lease it held taken by another.",
        LeaseName.claimed: "Deliveries this instance has claimed and not yet finished, by sink.",
    ]

    /// Buckets of the detection-to-delivery latency: a webhook answers within a second
    /// or two; retries, digests and quiet hours stretch it to hours.
    static let deliveryLatencyBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(3600),
    ]

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
        gauge(Name.buildInfo, [("version", ChatBridgeVersion.current)]).set(Int64(1))
    }

    // MARK: Metrics with their help

    func counter(_ name: String, _ labels: [(String, String)]) -> Prometheus.Counter {
        registry.makeCounter(descriptor: Self.descriptor(name), labels: labels)
    }

    func gauge(_ name: String, _ labels: [(String, String)]) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: Self.descriptor(name), labels: labels)
    }

    private func histogram(_ name: String, _ labels: [(String, String)], buckets: [Duration]) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: Self.descriptor(name), labels: labels, buckets: buckets)
    }

    private static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help[name] ?? "")
    }

    // MARK: Polls

    /// A poll that read every page and applied its snapshot.
    ///
    /// - Parameters:
    ///   - chats: distinct chats the poll listed.
    ///   - kindCounts: the events it stored, by kind (``PollApplication/kindCounts``).
    ///   - finishedAt: when it finished: the last successful poll time.
    package func recordCompletePoll(
        source: String, duration: Duration, chats: Int, kindCounts: [String: Int], typeCounts: [String: Int] = [:],
        finishedAt: Date = Date()
    ) {
        counter(Name.polls, [("source", source), ("outcome", "complete")]).increment()
        recordDuration(source: source, duration)
        gauge(Name.chats, [("source", source)]).record(Int64(chats))
        gauge(Name.lastSuccessfulPoll, [("source", source)]).set(finishedAt.timeIntervalSince1970)
        recordEvents(source: source, typeCounts: typeCounts, kindCounts: kindCounts)
    }

    /// A poll that was abandoned: an API error, a timeout, a store error, or (`stopped`)
    /// a shutdown, which is no failure for an alert to fire on.
    package func recordFailedPoll(source: String, duration: Duration, stopped: Bool = false) {
        counter(Name.polls, [("source", source), ("outcome", stopped ? "stopped" : "failed")]).increment()
        recordDuration(source: source, duration)
    }

    /// Matches that sent nothing because their rule was throttled for the chat.
    package func recordSuppressed(_ suppressions: [PollApplication.Suppression]) {
        for suppression in suppressions {
            counter(Name.suppressed, [("rule", suppression.rule), ("reason", "throttle")]).increment()
        }
    }

    /// Events stored by `source` (the `account.error` a failed poll may store, too): each
    /// once by type, and their change kinds.
    package func recordEvents(source: String, typeCounts: [String: Int], kindCounts: [String: Int]) {
        for (type, count) in typeCounts where count > 0 {
            counter(Name.events, [("source", source), ("type", type)]).increment(by: Int64(count))
        }
        for (kind, count) in kindCounts where count > 0 {
            counter(Name.eventKinds, [("kind", kind)]).increment(by: Int64(count))
        }
    }

    /// One answer of the Unipile API to `source`'s poll.
    package func recordUnipileResponse(source: String, status: Int) {
        counter(Name.unipileRequests, [("source", source), ("status", String(status))]).increment()
    }

    private func recordDuration(source: String, _ duration: Duration) {
        histogram(Name.pollDuration, [("source", source)], buckets: Self.pollDurationBuckets)
            .recordNanoseconds(duration.clampedNanoseconds)
    }

    // MARK: Deliveries

    /// The per-attempt metrics of each sink, made once: the registry finds a metric by its
    /// name and labels, which is work enough to show in a profile at thousands of
    /// deliveries a second.
    private struct SinkMetrics {
        var attempts: [String: Prometheus.Counter] = [:]
        var latency: DurationHistogram?
    }

    private let sinkMetrics = Mutex<[String: SinkMetrics]>([:])

    /// One recorded delivery attempt of `sink`.
    package func recordDelivery(sink: String, result: DeliveryAttemptResult) {
        let outcome = switch result {
        case .delivered: "delivered"
        case .retry: "retry"
        case .dead: "dead"
        }
        let counter = sinkMetrics.withLock { metrics in
            if let counter = metrics[sink]?.attempts[outcome] { return counter }
            let counter = self.counter(Name.deliveries, [("sink", sink), ("outcome", outcome)])
            metrics[sink, default: SinkMetrics()].attempts[outcome] = counter
            return counter
        }
        counter.increment()
    }

    /// A successful delivery of `sink`, `seconds` after its event was detected.
    package func recordDeliveryLatency(sink: String, seconds: Double) {
        let histogram = sinkMetrics.withLock { metrics in
            if let histogram = metrics[sink]?.latency { return histogram }
            let histogram = self.histogram(Name.deliveryLatency, [("sink", sink)], buckets: Self.deliveryLatencyBuckets)
            metrics[sink, default: SinkMetrics()].latency = histogram
            return histogram
        }
        histogram.recordNanoseconds(Int64(max(0, min(seconds, 1e9)) * 1e9))
    }

    /// Sets the outbox gauges from the store's counts.
    package func updateDeliveryGauges(_ counts: [String: SinkDeliveryCounts]) {
        let sinks = knownSinks.withLock { known in
            known.formUnion(counts.keys)
            return known
        }
        for sink in sinks {
            let entry = counts[sink] ?? SinkDeliveryCounts()
            gauge(Name.deliveriesPending, [("sink", sink)]).record(Int64(entry.pending))
            gauge(Name.deliveriesDead, [("sink", sink)]).record(Int64(entry.dead))
        }
    }

    /// Sets the last-success gauges from the stored source records (they survive restarts).
    package func updateLastSuccessfulPolls(_ records: [SourceRecord]) {
        for record in records {
            guard let success = record.lastSuccessAt else { continue }
            gauge(Name.lastSuccessfulPoll, [("source", record.name)]).set(success.timeIntervalSince1970)
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
