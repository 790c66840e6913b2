import ArgumentParser
import Foundation
import ChatBridgeCore
import Delivery
import Rules

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a CEL expression and print the result as JSON.",
        discussion: """
            With --event, the expression sees exactly what a rule's `when` sees for that \
            event: event, chat, previous ({} for an added chat), changes, kinds, type, \
            source, now and muted. Without it, `now` and the members of --vars.
            Examples:
              chatbridge eval 'now.getHours("Europe/Paris")'
              chatbridge events --limit 1 > event.json
              chatbridge eval --event event.json 'has(previous.unread_count)'
              chatbridge eval --vars vars.json 'x * 2'
              echo '{"expr": "x * 2", "bindings": {"x": 21}}' | chatbridge eval --jsonl
            """)

    @Option(help: "A JSON object whose members are the expression's variables.") var vars: String?
    @Option(help: ArgumentHelp(
        "A stored or hand-written event (JSON, or - for standard input): bind what a rule sees.",
        valueName: "FILE"))
    var event: String?
    @Flag(help: "Read {\"expr\": ..., \"bindings\": {...}} lines on standard input; write one result line each.")
    var jsonl = false
    @Argument(help: "The CEL expression.") var expression: String?

    func validate() throws {
        if jsonl, expression != nil { throw ValidationError("--jsonl reads expressions from standard input; give no EXPR") }
        if !jsonl, expression == nil { throw ValidationError("missing EXPR (or use --jsonl)") }
        if jsonl, vars != nil || event != nil { throw ValidationError("--jsonl takes its bindings from each line, not --vars or --event") }
        if vars != nil, event != nil { throw ValidationError("give --vars or --event, not both") }
    }

    func run() throws {
        StandardOutput.ignoreBrokenPipeSignal()
        if jsonl {
            while let line = readLine(strippingNewline: true) {
                if line.allSatisfy(\.isWhitespace) { continue }
                printLine(CELEvalTool.evaluateJSONLine(line))
            }
            return
        }
        let now = Date()
        if let event {
            for stored in try readEvents(event, now: now) {
                try printResult(CELEvalTool.evaluate(expression: expression ?? "", event: stored, now: now))
            }
            return
        }
        var variables = JSONValue.object(JSONObject())
        if let vars {
            let data = try readInputFile(vars)
            do {
                variables = try JSONValue.parse(data)
            } catch {
                printError("\(vars): not JSON: \(error)")
                throw ExitCode(2)
            }
            guard variables.objectValue != nil else {
                printError("\(vars): the variables must be a JSON object")
                throw ExitCode(2)
            }
        }
        try printResult(CELEvalTool.evaluate(expression: expression ?? "", variables: variables, now: now))
    }

    private func printResult(_ result: Result<(value: JSONValue, type: String), CELEvalToolError>) throws {
        switch result {
        case .success(let result):
            printLine(result.value.compactString)
        case .failure(let error):
            printError(error.message)
            // cli.md: 2 for what the user wrote wrong, 1 for a failure while running it.
            throw ExitCode(error.isCompileError ? 2 : 1)
        }
    }

    /// The events of FILE, completed as `rules test` completes them.
    private func readEvents(_ file: String, now: Date) throws -> [Event] {
        let data = try readInputFile(file)
        var generator = EventIDGenerator()
        do {
            return try RuleTestInput.events(in: Array(data)).map {
                try RuleSet.completeTestEvent($0, now: now, newEventID: { generator.next() })
            }
        } catch {
            printError("\(file): not an event: \(error)")
            throw ExitCode(2)
        }
    }
}
