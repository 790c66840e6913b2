import ArgumentParser
import ChatBridgeConfig
import ChatBridgeCore
import Foundation
import Runtime
import Store
import StorePostgres
import StoreSQLite

/// `chatbridge store …`: moving a store.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Move a store: copy a SQLite store into PostgreSQL.",
        subcommands: [StoreCopyCommand.self])
}

struct StoreCopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy the config's SQLite store into an empty PostgreSQL database.",
        discussion: """
            Copies everything (snapshots, account-error state, throttles, open digests, pending \
            and dead deliveries, event history), keeping ids, so that a bridge moved with it \
            takes no new baseline, re-announces no event and loses no pending delivery. Stop \
            the bridge first, copy, then point `store:` at the URL and start it again:
              chatbridge store copy --to postgres://chatbridge@db.internal/chatbridge
            The password comes from the URL or PGPASSWORD; it is never printed.
            """)

    @OptionGroup var config: ConfigOptions
    @Option(name: .long, help: ArgumentHelp("The PostgreSQL database to copy into.", valueName: "postgres://…"))
    var to: String
    @Flag(name: .long, help: "Erase what the target database holds first (otherwise a target with data is refused).")
    var replace = false

    func run() async throws {
        let configuration = try config.file.load()
        guard configuration.postgresStore == nil else {
            printError("the config's store is PostgreSQL already: `store copy` reads a SQLite store")
            throw ExitCode(2)
        }
        let url: PostgresStoreURL
        do {
            url = try PostgresStoreURL.parse(to, environment: ProcessInfo.processInfo.environment)
        } catch {
            printError("--to: \(error)")
            throw ExitCode(2)
        }
        let source = try await openStoreForReading(configuration)
        guard let exporter = source as? any StoreExporting else { throw ExitCode(1) }
        do {
            let target = try await PostgresStore.open(url: url, logger: quietStoreLogger)
            defer { target.close() }
            if try await !target.holdsNoData() {
                guard replace else {
                    printError("\(url) holds chatbridge data already: pass --replace to erase it first")
                    throw ExitCode(1)
                }
                try await target.eraseAll()
            }
            var counts: [String: Int] = [:]
            try await exporter.export(batchSize: 2000) { batch in
                try await target.importBatch(batch)
                counts[Self.tableName(batch), default: 0] += batch.count
            }
            try await target.finishImport()
            let summary = ["sources", "chats", "events", "deliveries", "digests", "throttles", "polls"]
                .map { "\(counts[$0] ?? 0) \($0)" }.joined(separator: ", ")
            printLine("copied \(summary) from \(configuration.storePath) to \(url)")
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("store copy to \(url): \(PostgresStore.reason(error))")
            throw ExitCode(1)
        }
    }

    static func tableName(_ batch: StoreCopyBatch) -> String {
        switch batch {
        case .fingerprintSeed: "seed"
        case .sources: "sources"
        case .chats: "chats"
        case .polls: "polls"
        case .events: "events"
        case .digests: "digests"
        case .digestEvents: "digest_events"
        case .deliveries: "deliveries"
        case .throttles: "throttles"
        }
    }
}
