import ArgumentParser
import Foundation
import ChatBridgeCore
import Rules

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a CEL expression and print the result as JSON.",
        discussion: """
            Examples:
              chatbridge eval '1 + 2'
              chatbridge eval --vars event.json 'chat.unread_count > 2 && chat.account_type == "LINKEDIN"'
              echo '{"expr": "x * 2", "bindings": {"x": 21}}' | chatbridge eval --jsonl
            """)

    @Option(help: "A JSON object whose members are the expression's variables.") var vars: String?
    @Flag(help: "Read {\"expr\": ..., \"bindings\": {...}} lines on standard input; write one result line each.")
    var jsonl = false
    @Argument(help: "The CEL expression.") var expression: String?

    func validate() throws {
        if jsonl, expression != nil { throw ValidationError("--jsonl reads expressions from standard input; give no EXPR") }
        if !jsonl, expression == nil { throw ValidationError("missing EXPR (or use --jsonl)") }
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
        var variables = JSONValue.object(JSONObject())
        if let vars {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: vars))
                variables = try JSONValue.parse(data)
            } catch {
                printError("\(vars): \(error)")
                throw ExitCode(2)
            }
            guard variables.objectValue != nil else {
                printError("\(vars): the variables must be a JSON object")
                throw ExitCode(2)
            }
        }
        switch CELEvalTool.evaluate(expression: expression ?? "", variables: variables) {
        case .success(let result):
            printLine(result.value.compactString)
        case .failure(let error):
            printError(error.message)
            throw ExitCode(1)
        }
    }
}
