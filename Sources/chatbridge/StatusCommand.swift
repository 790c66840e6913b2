import ArgumentParser
import Foundation
import ChatBridgeCore
import Runtime
import Store

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Each source's last poll and error, and the deliveries waiting per sink.",
        discussion: """
            Exits 1 when something needs attention: a source whose last poll failed, \
            that needs a person (account.error), or that has not completed a poll within \
            3 intervals (at least 10 seconds); or deliveries that died in the last 24 hours. For monitoring:
              chatbridge status --format json || notify-admin
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @OptionGroup var config: ConfigOptions
    @Option(help: "text or json.") var format: Format = .text

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.file.load(secrets: .mayBeUnset)
        let store = try await openStoreForReading(configuration)
        let now = Date()
        let records = Dictionary(uniqueKeysWithValues: try await store.sourceRecords().map { ($0.name, $0) })
        let counts = try await store.deliveryCounts(now: now, recentSince: now.addingTimeInterval(-86400))
        var report = StatusReport.make(configuration: configuration, records: records, counts: counts, now: now)
        if let leasing = store as? any SourceLeasing { report.instances = try await leasing.leaseOverview() }
        switch format {
        case .json:
            printLine(report.json.compactString)
        case .text:
            for line in report.lines { printLine(line) }
        }
        if report.needsAttention { throw ExitCode(1) }
    }
}
