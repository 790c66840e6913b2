import ArgumentParser
import Foundation
import ChatBridgeCore
import ChatBridgeConfig
import Delivery
import Rules
import Store
import StoreSQLite

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check rule files, or see what they would do with an event.",
        subcommands: [RulesCheckCommand.self, RulesTestCommand.self])
}

struct RulesCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Load the config and every rule file; report every problem as FILE:LINE:COLUMN: message.",
        discussion: """
            Exits 0 only when there is no problem at all. With --offline, secrets whose \
            ${VAR} is not set are fine (for checking rules where the service's \
            environment is not at hand).
            Example:
              chatbridge rules check && systemctl reload chatbridge
              chatbridge rules check --offline
            """)

    @OptionGroup var config: ConfigOptions
    @Flag(help: "Do not require the secrets' environment variables (API keys, webhook URLs).")
    var offline = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let secrets: ChatBridgeConfiguration.SecretUse = offline ? .mayBeUnset : .required
        var problems = RuleSet.checkAll(configPath: config.file.path, environment: environment, secrets: secrets).map { "\($0)" }
        // `run` must be able to write a SQLite store: say so now, creating nothing. (A
        // PostgreSQL store has no file; `run` reports an unreachable server itself.)
        if problems.isEmpty,
           let configuration = try? ChatBridgeConfiguration.load(path: config.file.path, environment: environment, secrets: secrets),
           configuration.postgresStore == nil,
           let problem = SQLiteStore.problem(path: configuration.storePath, probe: .system) {
            problems.append(problem)
        }
        for problem in problems { printError(problem) }
        if !problems.isEmpty {
            printError("\(problems.count) problem\(problems.count == 1 ? "" : "s")")
            throw ExitCode(2)
        }
        if let configuration = try? config.file.load(secrets: offline ? .mayBeUnset : .required),
           let rules = try? RuleSet.load(path: configuration.rulesPath, configuration: configuration),
           let warning = rules.accountErrorWarning
        {
            printError("warning: \(warning)")
        }
        printError("config and rules OK")
    }
}

struct RulesTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Which rules match an event, and what each sink would be sent. Sends nothing.",
        discussion: """
            Prints one JSON line per rule. The event is a stored one (chatbridge events) or \
            written by hand, compact or pretty; missing id and occurred_at are filled in. \
            JSON lines (or a JSON array) test each event: every line then has "event_id".
            Examples:
              chatbridge events --limit 1 | chatbridge rules test --event -
              chatbridge rules test --event my-event.json | jq 'select(.matched)'
            """)

    @OptionGroup var config: ConfigOptions
    @Option(help: "A file holding the event as JSON (or JSON lines, one event each), or - for standard input.")
    var event: String

    func run() throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.file.load(secrets: .mayBeUnset)
        let rules = try loadRules(configuration)
        let data = try readInputFile(event)
        let values: [JSONValue]
        do {
            values = try RuleTestInput.events(in: Array(data))
        } catch {
            printError("\(event): \(error)")
            throw ExitCode(2)
        }
        var generator = EventIDGenerator()
        var parsed: [Event] = []
        for (index, value) in values.enumerated() {
            do {
                parsed.append(try RuleSet.completeTestEvent(value, now: Date(), newEventID: { generator.next() }))
            } catch {
                let place = values.count == 1 ? "" : " (event \(index + 1))"
                printError("\(event)\(place): not an event: \(error)")
                throw ExitCode(2)
            }
        }
        // One line per rule and event; with several events, each line names its event.
        for tested in parsed {
            for result in rules.testReport(for: tested, configuration: configuration, now: Date()) {
                var line = result.json
                if parsed.count > 1, case .object(var object) = line {
                    object["event_id"] = .string(tested.id)
                    line = .object(object)
                }
                printLine(line.compactString)
            }
        }
    }
}

struct DeliveriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries",
        abstract: "The delivery log: one JSON line per delivery (or a table for people).",
        discussion: """
            Examples:
              chatbridge deliveries --status dead --format table
              chatbridge deliveries --sink team-slack |
                jq -r 'select(.attempts > 3) | .event_id'
            """)

    enum Status: String, ExpressibleByArgument, CaseIterable { case pending, delivered, dead }
    enum Format: String, ExpressibleByArgument, CaseIterable { case json, table }

    @OptionGroup var config: ConfigOptions
    @Option(help: "pending, delivered or dead.") var status: Status?
    @Option(help: "Only this sink's deliveries.") var sink: String?
    @Option(help: "Only this event's deliveries.") var event: String?
    @Option(help: "At most the N most recent.") var limit: Int?
    @Option(help: "json (one line each) or table.") var format: Format = .json

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.file.load(secrets: .mayBeUnset)
        let store = try await openStoreForReading(configuration)
        let records = try await store.deliveries(status: status?.rawValue, sink: sink, eventID: event, limit: limit)
        switch format {
        case .json:
            for record in records { printLine(record.json.compactString) }
        case .table:
            let header = ["EVENT", "RULE", "SINK", "STATUS", "ATTEMPTS", "LAST", "NEXT / DELIVERED", "ERROR"]
            let rows = records.map { record -> [String] in
                [
                    record.eventID, record.rule ?? "-", record.sink, record.status, "\(record.attempts)",
                    record.lastStatus.map(String.init) ?? "-",
                    (record.deliveredAt ?? record.nextAttemptAt).map(Timestamp.iso8601) ?? "-",
                    TerminalText.clean(record.lastError ?? "", limit: 60),
                ]
            }
            for line in TerminalText.table(header: header, rows: rows) { printLine(line) }
        }
    }
}

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Deliver a stored event again (same event id, new attempts).",
        discussion: """
            Queues the event's deliveries (of one sink with --sink) as due now; a running \
            `chatbridge run` picks them up within seconds, or run `chatbridge run --once`. \
            A finished delivery gets a new row, so `chatbridge deliveries --event ID` shows \
            the earlier attempts too; the webhook-id stays the same.
            Example:
              chatbridge replay 0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77 --sink team-slack
            """)

    @OptionGroup var config: ConfigOptions
    @Argument(help: "The event's id (chatbridge events | jq -r .id).") var eventID: String
    @Option(help: "Only to this sink (it must be configured).") var sink: String?

    func run() async throws {
        let configuration = try config.file.load(secrets: .mayBeUnset)
        if let sink, configuration.sinks[sink] == nil {
            printError("no sink named \(sink) in \(configuration.file)")
            throw ExitCode(2)
        }
        let store = try await openStore(configuration)
        do {
            let count = try await store.replay(eventID: eventID, sink: sink, now: Date())
            if count == 0 {
                let sinks = configuration.sinkNames.joined(separator: ", ")
                printError(
                    "event \(eventID) has no deliveries to replay: no rule matched it when it was detected "
                        + "(chatbridge explain \(eventID) says why); to send it anyway: "
                        + "chatbridge replay \(eventID) --sink NAME (one of: \(sinks))")
                return
            }
            printError(
                "queued \(count) deliver\(count == 1 ? "y" : "ies") of event \(eventID); "
                    + "earlier attempts stay listed (chatbridge deliveries --event \(eventID))")
        } catch let error as ReplayError {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// Text for a terminal: no control characters from hostile data, aligned columns.
enum TerminalText {
    static func clean(_ text: String, limit: Int) -> String {
        var cleaned = String(text.unicodeScalars.map { scalar -> Character in
            scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
                ? " " : Character(scalar)
        })
        if cleaned.count > limit { cleaned = String(cleaned.prefix(limit - 1)) + "…" }
        return cleaned
    }

    static func table(header: [String], rows: [[String]]) -> [String] {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return ([header] + rows).map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
