import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

@Suite("chatbridge status: what needs attention")
struct StatusReportTests {
    let now = Date(timeIntervalSince1970: 1_764_000_000)

    func configuration() throws -> ChatBridgeConfiguration {
        try ChatBridgeConfiguration.parse(
            yaml: """
                sources:
                  - {name: main, url: "http://127.0.0.1:1", api_key: k, interval: 30s}
                  - {name: side, url: "http://127.0.0.1:1", api_key: k, interval: 30s}
                sinks:
                  hook: {type: webhook, url: "http://127.0.0.1:2/hook"}
                """,
            file: "chatbridge.yaml", environment: [:])
    }

    func record(_ name: String, success: TimeInterval?, outcome: String, accountError: JSONValue? = nil) -> SourceRecord {
        var record = SourceRecord(name: name, filterFingerprint: "f")
        record.baselineDone = true
        record.lastSuccessAt = success.map { now.addingTimeInterval(-$0) }
        record.lastPollAt = now.addingTimeInterval(-5)
        record.lastOutcome = outcome
        record.accountError = accountError
        record.lastError = outcome == "failed" ? "page 1: HTTP 503\u{1B}[31m" : nil
        return record
    }

    @Test func healthySourcesAndQueuesNeedNothing() throws {
        let report = StatusReport.make(
            configuration: try configuration(),
            records: ["main": record("main", success: 10, outcome: "complete"),
                      "side": record("side", success: 20, outcome: "complete")],
            counts: ["hook": SinkDeliveryCounts(pending: 2, due: 1, dead: 3, recentlyDead: 0, delivered: 10)], now: now)
        #expect(!report.needsAttention)
        #expect(report.json["needs_attention"] == .bool(false))
        #expect(report.lines.contains("ok sink hook: 2 pending (1 due), 3 dead (0 in 24h), 10 delivered"))
    }

    @Test func failingStaleAccountErrorAndRecentDeadEachNeedAttention() throws {
        let configuration = try configuration()
        let cases: [([String: SourceRecord], [String: SinkDeliveryCounts], String)] = [
            (["main": record("main", success: 10, outcome: "failed"), "side": record("side", success: 10, outcome: "complete")],
             [:], "last poll failed"),
            (["main": record("main", success: 200, outcome: "complete"), "side": record("side", success: 10, outcome: "complete")],
             [:], "no complete poll for 200s"),
            (["main": record("main", success: 10, outcome: "failed", accountError: ["type": "errors/disconnected_account"]),
              "side": record("side", success: 10, outcome: "complete")], [:], "needs a person"),
            (["main": record("main", success: 10, outcome: "complete")], [:], "never polled"),
        ]
        for (records, counts, problem) in cases {
            let report = StatusReport.make(configuration: configuration, records: records, counts: counts, now: now)
            #expect(report.needsAttention, "\(problem)")
            #expect(report.lines.contains { $0.hasPrefix("!! ") && $0.contains(problem) }, "\(report.lines)")
            #expect(report.lines.allSatisfy { !$0.contains("\u{1B}") }, "no terminal escapes from stored text")
        }
        let dead = StatusReport.make(
            configuration: configuration,
            records: ["main": record("main", success: 10, outcome: "complete"),
                      "side": record("side", success: 10, outcome: "complete")],
            counts: ["hook": SinkDeliveryCounts(dead: 1, recentlyDead: 1)], now: now)
        #expect(dead.needsAttention)
    }
}
