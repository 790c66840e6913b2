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
        gauge(LeaseName.leasesHeld, []).record(Int64(leasing.heldSources.count))
        let claimed = try await leasing.claimedDeliveries()
        for (sink, count) in claimed {
            gauge(LeaseName.claimed, [("sink", sink)]).record(Int64(count))
        }
        for sink in claimedSinks.withLock({ seen in defer { seen.formUnion(claimed.keys) }; return seen })
        where claimed[sink] == nil {
            gauge(LeaseName.claimed, [("sink", sink)]).record(Int64(0))
        }
    }

    /// Counts leases this instance lost.
    package func recordLeasesLost(_ count: Int) {
        guard count > 0 else { return }
        counter(LeaseName.leasesLost, []).increment(by: Int64(count))
    }
}
