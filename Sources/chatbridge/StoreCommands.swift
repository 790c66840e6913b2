import ArgumentParser
import Foundation
import Logging
import Runtime
import ChatBridgeConfig
import ChatBridgeCore
import Store
import StoreSQLite

/// Opens the store named by the config for reading, or exits 1 saying why.
func openStoreForReading(_ configuration: ChatBridgeConfiguration) async throws -> any RuntimeStore {
    do {
        return try await BridgeStores.open(configuration, readOnly: true, logger: quietStoreLogger)
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// Opens (creating when missing) the store named by the config, or exits 1 saying why.
func openStore(_ configuration: ChatBridgeConfiguration) async throws -> any RuntimeStore {
    do {
        return try await BridgeStores.open(configuration, logger: quietStoreLogger)
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// The one-shot commands say what went wrong themselves; the store logs nothing.
let quietStoreLogger = Logger(label: "chatbridge.store") { _ in SwiftLogNoOpLogHandler() }

struct ChatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chats",
        abstract: "The last complete snapshot: one chat per line, as the API sent it.",
        discussion: """
            Example:
              chatbridge chats --source main | jq -r 'select(.unread_count > 0) | .name'
            """)

    @OptionGroup var config: ConfigOptions
    @Option(help: "Only the chats of this source.") var source: String?

    func run() async throws {
        let configuration = try config.file.load(secrets: .mayBeUnset)
        if let source, configuration.source(named: source) == nil {
            printError("no source named \(source) in \(configuration.file)")
            throw ExitCode(2)
        }
        let store = try await openStoreForReading(configuration)
        for (_, chat) in try await store.snapshotChats(source: source) {
            printLine(chat.compactString)
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Stored events as JSON lines, oldest first.",
        discussion: """
            Examples:
              chatbridge events --since 1h --kind unread.increased
              chatbridge events --limit 1 | chatbridge rules test --event -
              chatbridge events --follow | jq -c '{chat: .chat.name, kinds}'
            """)

    @OptionGroup var config: ConfigOptions
    @Option(help: "Only events of the last DURATION (30m, 2h, 7d).") var since: DurationArgument?
    @Option(help: "Only events of this type (chat.added, chat.changed, chat.removed, account.error, account.recovered).")
    var type: String?
    @Option(help: "Only events with this kind (unread.increased, chat.archived, ...).") var kind: String?
    @Option(help: "Only events of this chat id.") var chat: String?
    @Option(help: "At most the N newest events.") var limit: Int?
    @Flag(help: "Print new events as they are stored, like tail -f (with --since or --limit: those first).")
    var follow = false

    func validate() throws {
        if let type, EventType(rawValue: type) == nil {
            throw ValidationError("unknown event type \(type); one of \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let kind, ChangeKind(rawValue: kind) == nil {
            throw ValidationError("unknown kind \(kind); one of \(ChangeKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() async throws {
        let configuration = try config.file.load(secrets: .mayBeUnset)
        let store = try await openStoreForReading(configuration)
        var query = EventQuery(
            since: since.map { Date().addingTimeInterval(-$0.seconds) }, type: type, kind: kind, chatID: chat,
            limit: limit)
        var last: Int64 = 0
        // `--follow` alone is `tail -f`: only what comes from now on.
        let historyFirst = !follow || since != nil || limit != nil
        if historyFirst {
            for event in try await store.events(query) {
                printLine(event.json)
                last = event.sequence
            }
        }
        guard follow else { return }
        if last == 0 { last = try await store.lastEventSequence() }
        query.limit = nil
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(500))
            query.afterSequence = last
            for event in try await store.events(query) {
                printLine(event.json)
                last = event.sequence
            }
        }
    }
}
