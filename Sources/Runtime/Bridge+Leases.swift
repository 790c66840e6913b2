import Foundation
import Logging
import Store
import Synchronization

extension Bridge {
    /// Whether this instance polls `source` now: it holds the lease (renewed here), or the
    /// lease is free or expired and this instance holds fewer than its fair share of the
    /// sources (so that load spreads over the instances).
    func mayPoll(_ source: String, leasing: any SourceLeasing) async -> Bool {
        do {
            if !leasing.heldSources.contains(source) {
                let share = try await leasing.fairShare(sourceCount: configuration.sources.count)
                if leasing.heldSources.count >= share { return false }
            }
            let held = try await leasing.acquireLease(source: source) != nil
            outage.ended(logger: logger)
            return held
        } catch {
            outage.failed(reason: store.reason(for: error), logger: logger)
            return false
        }
    }

    /// After a poll: hands the source back when this instance holds more than its fair
    /// share (an instance joined), so that another picks it up on its next look.
    func spreadLoad(after source: String, leasing: any SourceLeasing) async {
        guard let share = try? await leasing.fairShare(sourceCount: configuration.sources.count),
              leasing.heldSources.count > share, leasing.heldSources.contains(source)
        else { return }
        do {
            try await leasing.releaseLease(source: source)
            logger.info("handed source \(source) to another instance", metadata: ["source": "\(source)"])
        } catch {
            logger.debug("could not hand back the lease", metadata: ["error": "\(store.reason(for: error))"])
        }
    }

    /// Renews this instance's leases (and its heartbeat) three times per lease period, until
    /// cancelled. An unreachable store is logged once per outage.
    func keepLeases(_ leasing: any SourceLeasing) async {
        let period = leasing.leaseDuration / 3
        while !Task.isCancelled {
            do {
                let before = leasing.heldSources
                let kept = try await leasing.renewLeases()
                metrics.recordLeasesLost(before.subtracting(kept).count)
                outage.ended(logger: logger)
            } catch {
                if Task.isCancelled { return }
                outage.failed(reason: store.reason(for: error), logger: logger)
            }
            try? await Task.sleep(for: period)
        }
    }
}

/// Says once that the store cannot be reached, and once that it can again: an outage of
/// a shared database is one error line, however many polls and renewals it fails.
final class StoreOutageLog: Sendable {
    private let failing = Mutex(false)

    func failed(reason: String, logger: Logger) {
        let first = failing.withLock { failing in
            defer { failing = true }
            return !failing
        }
        if first {
            logger.error("the store is unreachable: polling and delivery wait for it", metadata: ["error": "\(reason)"])
        }
    }

    func ended(logger: Logger) {
        let was = failing.withLock { failing in
            defer { failing = false }
            return failing
        }
        if was { logger.notice("the store is reachable again: polling and delivery resume") }
    }
}
