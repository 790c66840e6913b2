import ArgumentParser
import Foundation
import ChatBridgeCore
import Detect
import Rules
import Runtime
import Store

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Why a stored event did or did not notify: every rule's verdict and the reason.",
        discussion: """
            For each rule: `on` did not select the event (its type and kinds), `when` was \
            false (with the values the condition read), throttled (until when, by which \
            earlier delivery), added to a digest, postponed by quiet hours, or matched and \
            sent (each sink's delivery status). Conditions are judged as at detection \
            (`now` is the event's occurred_at); when rule files changed since, it says so.
            Examples:
              chatbridge explain 0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77
              chatbridge explain "$(chatbridge events --limit 1 | jq -r .id)"
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @OptionGroup var config: ConfigOptions
    @Argument(help: "The event's id (chatbridge events | jq -r .id).") var eventID: String
    @Option(help: "text or json.") var format: Format = .text

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.file.load(secrets: .mayBeUnset)
        let rules = try loadRules(configuration)
        let store = try await openStoreForReading(configuration)
        guard let stored = try await store.event(id: eventID) else {
            printError("no stored event \(eventID) (chatbridge events lists them; retention may have pruned it)")
            throw ExitCode(1)
        }
        let event: Event
        do {
            event = try Event(json: try JSONValue.parse(stored.json))
        } catch {
            printError("event \(eventID) cannot be read: \(error)")
            throw ExitCode(1)
        }
        let facts = try await store.deliveryFacts(eventID: event.id)
        let orderingKey = event.chatID.map { OrderingKey.chat(source: event.source, chatID: $0) }
            ?? OrderingKey.account(source: event.source)
        var throttledBy: [String: ThrottlingDelivery] = [:]
        for rule in rules.rules where rule.throttle != nil {
            throttledBy[rule.name] = try await store.latestDelivery(
                rule: rule.name, orderingKey: orderingKey, atOrBefore: event.occurredAt, excludingEventID: event.id)
        }
        let changed = Set(rules.rules.map(\.file)).sorted().filter { file in
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            return (attributes?[.modificationDate] as? Date).map { $0 > event.occurredAt } ?? false
        }
        let explanation = EventExplanation.make(
            event: event, rules: rules, facts: facts, throttledBy: throttledBy, rulesChangedSince: changed)
        switch format {
        case .text: for line in explanation.lines { printLine(line) }
        case .json: printLine(explanation.json.compactString)
        }
    }
}
