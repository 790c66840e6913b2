import Metrics
import Store

extension BridgeMetrics {
    /// Metric names of an instance sharing its store (scale.md).
    package enum LeaseName {
        /// Sources whose lease this instance holds now.
        package static let leasesHeld = "chatbridge_source_leases_held"
        /// Times this instance found a lease it held taken by another (it was paused or cut off).
        package static let leasesLost = "chatbridge_source_leases_lost_total"
        /// Deliveries this instance has claimed and not yet finished, per sink.
        package static let claimed = "chatbridge_deliveries_claimed"
    }

    /// Sets the lease and claim gauges from the store (on every scrape and refresh).
    func updateLeaseGauges(_ leasing: any SourceLeasing) async throws {
        CoreMetrics.Gauge(label: LeaseName.leasesHeld, factory: factory).record(leasing.heldSources.count)
        let claimed = try await leasing.claimedDeliveries()
        for (sink, count) in claimed {
            CoreMetrics.Gauge(label: LeaseName.claimed, dimensions: [("sink", sink)], factory: factory).record(count)
        }
        for sink in claimedSinks.withLock({ seen in defer { seen.formUnion(claimed.keys) }; return seen })
        where claimed[sink] == nil {
            CoreMetrics.Gauge(label: LeaseName.claimed, dimensions: [("sink", sink)], factory: factory).record(0)
        }
    }

    /// Counts leases this instance lost.
    package func recordLeasesLost(_ count: Int) {
        guard count > 0 else { return }
        CoreMetrics.Counter(label: LeaseName.leasesLost, factory: factory).increment(by: count)
    }
}
