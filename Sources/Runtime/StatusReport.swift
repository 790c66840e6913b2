import Foundation
import ChatBridgeConfig
import ChatBridgeCore
import Store

/// What `chatbridge status` says: pure, from the stored records and counts.
package struct StatusReport: Sendable {
    package struct SourceStatus: Sendable {
        package var name: String
        package var lastPollAt: Date?
        package var outcome: String
        package var error: String?
        package var lastSuccessAt: Date?
        package var consecutiveFailures: Int
        package var accountError: JSONValue?
        package var problem: String?
    }

    package var sources: [SourceStatus]
    package var sinks: [(name: String, counts: SinkDeliveryCounts)]
    /// The instances sharing a PostgreSQL store and the leases they hold (`nil` for SQLite).
    package var instances: LeaseOverview?
    package var needsAttention: Bool {
        sources.contains { $0.problem != nil } || sinks.contains { $0.counts.recentlyDead > 0 }
    }

    package static func make(
        configuration: ChatBridgeConfiguration, records: [String: SourceRecord],
        counts: [String: SinkDeliveryCounts], now: Date
    ) -> StatusReport {
        var sources: [SourceStatus] = []
        for source in configuration.sources {
            let record = records[source.name]
            let allowance = PollFreshness.allowance(interval: source.interval)
            var problem: String?
            if record?.accountError != nil {
                problem = "the account or API key needs a person"
            } else if record?.lastOutcome == "failed" {
                problem = "last poll failed"
            } else if let success = record?.lastSuccessAt, now.timeIntervalSince(success) > allowance {
                problem = "no complete poll for \(PollFreshness.age(now.timeIntervalSince(success)))"
            } else if record?.lastSuccessAt == nil {
                problem = "never polled completely"
            }
            sources.append(SourceStatus(
                name: source.name, lastPollAt: record?.lastPollAt, outcome: record?.lastOutcome ?? "never polled",
                error: record?.lastError, lastSuccessAt: record?.lastSuccessAt,
                consecutiveFailures: record?.consecutiveFailures ?? 0, accountError: record?.accountError,
                problem: problem))
        }
        let sinkNames = Set(configuration.sinks.keys).union(counts.keys).sorted()
        return StatusReport(sources: sources, sinks: sinkNames.map { ($0, counts[$0] ?? SinkDeliveryCounts()) })
    }

    package var json: JSONValue {
        func time(_ date: Date?) -> JSONValue { date.map { .string(Timestamp.iso8601($0)) } ?? .null }
        var sinkObject = JSONObject()
        for (name, counts) in sinks {
            sinkObject[name] = .object([
                "pending": .int(Int64(counts.pending)), "due": .int(Int64(counts.due)),
                "dead": .int(Int64(counts.dead)), "dead_last_24h": .int(Int64(counts.recentlyDead)),
                "delivered": .int(Int64(counts.delivered)), "oldest_pending_at": time(counts.oldestPendingAt),
            ])
        }
        return withInstances(.object([
            "needs_attention": .bool(needsAttention),
            "sources": .array(sources.map { source in
                .object([
                    "name": .string(source.name), "last_poll_at": time(source.lastPollAt),
                    "outcome": .string(source.outcome), "error": source.error.map(JSONValue.string) ?? .null,
                    "last_success_at": time(source.lastSuccessAt),
                    "consecutive_failures": .int(Int64(source.consecutiveFailures)),
                    "account_error": source.accountError ?? .null,
                    "problem": source.problem.map(JSONValue.string) ?? .null,
                ])
            }),
            "sinks": .object(sinkObject),
        ]))
    }

    /// Lines for people.
    package var lines: [String] {
        var lines: [String] = []
        for source in sources {
            let mark = source.problem == nil ? "ok " : "!! "
            var line = "\(mark)source \(source.name): \(source.outcome)"
            if let at = source.lastPollAt { line += " at \(Timestamp.iso8601(at))" }
            if let problem = source.problem { line += " — \(problem)" }
            lines.append(line)
            if let error = source.error { lines.append("     error: \(Self.printable(error))") }
            if let title = source.accountError?["title"]?.stringValue ?? source.accountError?["type"]?.stringValue {
                lines.append("     account: \(Self.printable(title))")
            }
        }
        for (name, counts) in sinks {
            let mark = counts.recentlyDead > 0 ? "!! " : "ok "
            lines.append("\(mark)sink \(name): \(counts.pending) pending (\(counts.due) due), \(counts.dead) dead"
                + " (\(counts.recentlyDead) in 24h), \(counts.delivered) delivered")
        }
        return lines + instanceLines
    }

    /// No control characters from hostile text reach the terminal.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
    }
}
