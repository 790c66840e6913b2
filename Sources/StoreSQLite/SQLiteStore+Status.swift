import Foundation
import GRDB
import Store

extension SQLiteStore {
    /// Delivery counts per sink.
    package func deliveryCounts(now: Date = Date(), recentSince: Date) async throws -> [String: SinkDeliveryCounts] {
        try await pool.read { db in
            var counts: [String: SinkDeliveryCounts] = [:]
            let rows = try Row.fetchAll(db, sql: """
                SELECT sink, status, count(*) AS n,
                       sum(CASE WHEN status = 'pending' AND next_attempt_at <= ? THEN 1 ELSE 0 END) AS due,
                       sum(CASE WHEN status = 'dead' AND finished_at >= ? AND NOT EXISTS (
                               -- Replayed and delivered since: nothing is left to attend to.
                               SELECT 1 FROM deliveries AS later
                               WHERE later.event_id = d.event_id AND later.sink = d.sink AND later.rule IS d.rule
                                 AND later.id > d.id AND later.status = 'delivered')
                           THEN 1 ELSE 0 END) AS recent,
                       min(CASE WHEN status = 'pending' THEN created_at END) AS oldest
                FROM deliveries AS d GROUP BY sink, status
                """, arguments: [now.storeValue, recentSince.storeValue])
            for row in rows {
                let sink: String = row["sink"]
                var entry = counts[sink] ?? SinkDeliveryCounts()
                let n: Int = row["n"]
                switch row["status"] as String {
                case "pending":
                    entry.pending = n
                    entry.due = row["due"] ?? 0
                    entry.oldestPendingAt = (row["oldest"] as Double?).map(Date.init(storeValue:))
                case "dead":
                    entry.dead = n
                    entry.recentlyDead = row["recent"] ?? 0
                case "delivered":
                    entry.delivered = n
                default: break
                }
                counts[sink] = entry
            }
            return counts
        }
    }
}
