import ArgumentParser
import AsyncHTTPClient
import Foundation
import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Formats
import Rules
import Runtime
import Unipile

struct SinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sinks",
        abstract: "The configured sinks: list them, or send one event through one.",
        subcommands: [SinksListCommand.self, SinksTestCommand.self])
}

struct SinksListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Each sink, its type, and the rules that send to it (one JSON line each).",
        discussion: """
            Shows no URL, header or secret. A sink no rule names receives nothing (unless \
            there are no rules at all: then every event goes to stdout).
            Examples:
              chatbridge sinks list
              chatbridge sinks list | jq -r 'select(.rules == []) | .sink'
            """)

    @OptionGroup var config: ConfigOptions

    func run() throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.file.load()
        let rules = try loadRules(configuration)
        for line in SinkListing.lines(configuration: configuration, rules: rules) {
            printLine(line.compactString)
        }
    }
}

/// What `chatbridge sinks list` prints.
enum SinkListing {
    static func lines(configuration: ChatBridgeConfiguration, rules: RuleSet) -> [JSONValue] {
        configuration.sinkNames.map { name in
            let sink = configuration.sinks[name] ?? .standardOutput
            var object: JSONObject = ["sink": .string(name), "type": .string(sink.typeName)]
            switch sink.kind {
            case .webhook(let webhook):
                object["format"] = .string(webhook.format.rawValue)
                object["signed"] = .bool(!webhook.secrets.isEmpty)
            case .http(let http):
                object["method"] = .string(http.method)
                object["content_type"] = .string(http.contentType)
                object["signed"] = .bool(!http.secrets.isEmpty)
            case .standardOutput, .exec:
                break
            }
            let sending = rules.isEmpty
                ? []
                : rules.rules.filter { $0.sinks.contains(name) }.map { JSONValue.string($0.name) }
            object["rules"] = .array(sending)
            if rules.isEmpty && name == SinkConfiguration.standardOutputName {
                object["note"] = .string("no rules are configured: every event goes here")
            }
            return .object(object)
        }
    }
}

struct SinksTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Sends one event through one sink, for real, and says what came back.",
        discussion: """
            The event is a made-up chat.changed (Jane Doe, 3 unread), or the one in --event \
            (a stored event from chatbridge events, or written by hand). Prints the request \
            (method, host, header names, body size: never the path, query, header values \
            or body, which may hold tokens) and the response status and body. Records \
            nothing in the store and retries nothing. Exit status 0 only when delivered.
            Examples:
              chatbridge sinks test phone
              chatbridge events --limit 1 | chatbridge sinks test team-slack --event -
            """)

    @OptionGroup var config: ConfigOptions
    @Argument(help: "The sink's name, as under sinks: in the config.") var name: String
    @Option(help: "A file holding the event as JSON, or - for standard input.") var event: String?
    @Option(help: "The rule name the event is delivered as (default: the first rule sending to the sink).")
    var rule: String?

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.file.load()
        let rules = try loadRules(configuration)
        guard let sinkConfiguration = configuration.sinks[name] else {
            printError("no sink named '\(name)'; configured: \(configuration.sinkNames.joined(separator: ", "))")
            throw ExitCode(2)
        }
        let eventJSON: JSONValue
        if let event {
            eventJSON = try readEventArgument(event).json()
        } else {
            guard case .object(var sample) = SampleEvent.changed else { throw ExitCode(2) }
            sample["rule"] = nil
            var generator = EventIDGenerator()
            sample["id"] = .string(generator.next())
            sample["occurred_at"] = .string(Timestamp.iso8601(Date()))
            eventJSON = .object(sample)
        }
        let ruleName = rule ?? rules.rules.first { $0.sinks.contains(name) }?.name
        let template = ruleName.flatMap { name in rules.rules.first { $0.name == name } }?.template
        let request = DeliveryRequest(
            eventID: eventJSON["id"]?.stringValue ?? "", event: eventJSON, rule: ruleName, sink: name, template: template)

        // Every value the file takes from the environment or a file is a secret here.
        let redactor = LogRedactor(secrets: configuration.secretValues)
        // The client `run` uses: no redirects, and a refused connection fails at once.
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: UnipileClient.makeHTTPClientConfiguration())
        let sink = makeSink(name: name, configuration: sinkConfiguration, httpClient: http)
        printLine("sink \(name) (\(sinkConfiguration.typeName)), event \(request.eventID) as rule \(ruleName ?? "(none)")")
        let outcome: DeliveryOutcome
        if let httpSink = sink as? any HTTPAttemptingSink {
            let attempt = await httpSink.attempt(request)
            let summary = attempt.request
            let target = summary.origin.map { "\($0)/… (path and query hidden)" } ?? "(no request: see below)"
            printLine("request: \(summary.method) \(target)")
            if !summary.headerNames.isEmpty {
                printLine("headers: \(summary.headerNames.joined(separator: ", ")) (values hidden)")
            }
            if let contentType = summary.contentType {
                printLine("body: \(summary.bodyBytes) bytes of \(contentType) (not shown)")
            }
            if let status = attempt.status {
                printLine("response: HTTP \(status)")
                let excerpt = attempt.responseExcerpt
                if !excerpt.isEmpty { printLine("response body: \(redactor.redact(excerpt))") }
            }
            outcome = attempt.outcome
        } else {
            outcome = await sink.deliver(request)
        }
        try? await http.shutdown()
        switch outcome {
        case .delivered(let status):
            printLine("delivered" + (status.map { sinkConfiguration.typeName == "exec" ? " (exit status \($0))" : " (\($0))" } ?? ""))
        case .retry(_, let error, _):
            printError("not delivered (a delivery would be retried): \(redactor.redact(error))")
            throw ExitCode(1)
        case .dead(_, let error):
            printError("not delivered (a delivery would be dead): \(redactor.redact(error))")
            throw ExitCode(1)
        case .outputClosed:
            throw ExitCode(1)
        }
    }
}

/// Reads `--event FILE` (or `-`, standard input): the first line holding JSON, completed
/// by ``RuleSet/completeTestEvent(_:now:newEventID:)``; exits 2 when it is not an event.
func readEventArgument(_ path: String) throws -> Event {
    let data = try readInputFile(path)
    // `chatbridge events` writes one event per line: take the first line that holds one.
    let text = String(decoding: data, as: UTF8.self)
    let candidate = text.split(whereSeparator: \.isNewline).first { !$0.allSatisfy(\.isWhitespace) }
    do {
        let json = try JSONValue.parse(String(candidate ?? ""))
        var generator = EventIDGenerator()
        return try RuleSet.completeTestEvent(json, now: Date(), newEventID: { generator.next() })
    } catch {
        printError("\(path): not an event: \(error)")
        throw ExitCode(2)
    }
}
