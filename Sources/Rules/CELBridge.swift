import CEL
import Foundation
import ChatBridgeCore

// The seam between JSON (chats, events, `eval` input) and CEL values.

extension CELValue {
    /// The CEL value of a JSON value: JSON ints become `.int`, numbers with a fraction or
    /// exponent `.double`, arrays `.list`, objects `.map`s with string keys in their order.
    ///
    /// ```swift
    /// let chat = try JSONValue.parse(#"{"name":"Acme","unread_count":3}"#)
    /// CELValue(json: chat)   // {"name": "Acme", "unread_count": 3}
    /// ```
    package init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .list(items.map(CELValue.init(json:)))
        case .object(let object):
            self = .map(CELMap(object.members.map { (CELValue.string($0.key), CELValue(json: $0.value)) }))
        }
    }

    /// The value as JSON: timestamps as RFC 3339 strings (`"2026-03-29T01:30:00Z"`),
    /// durations as seconds (`"3600s"`), map keys as strings (`1` → `"1"`), a uint too
    /// large for an int as a double. Pair it with ``CELValue/typeName`` where the JSON
    /// alone is ambiguous.
    package var jsonValue: JSONValue {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .uint(let u): return Int64(exactly: u).map(JSONValue.int) ?? .double(Double(u))
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .list(let items): return .array(items.map(\.jsonValue))
        case .map(let map):
            var object = JSONObject()
            for entry in map {
                let key: String
                switch entry.key {
                case .string(let s): key = s
                case .int(let i): key = String(i)
                case .uint(let u): key = String(u)
                case .bool(let b): key = b ? "true" : "false"
                default: key = entry.key.description
                }
                object[key] = entry.value.jsonValue
            }
            return .object(object)
        case .timestamp(let t): return .string(t.rfc3339)
        case .duration(let d): return .string(d.description)
        }
    }
}

/// Why `chatbridge eval` produced no value: the input, the expression or its evaluation
/// failed. `description` is the message alone, ready to print.
package struct CELEvalToolError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    /// The expression itself is wrong (it does not compile): a usage error of `eval`,
    /// where an error while evaluating it is a runtime failure.
    package var isCompileError: Bool
    package init(message: String, isCompileError: Bool = false) {
        self.message = message
        self.isCompileError = isCompileError
    }
    package var description: String { message }
}

/// `chatbridge eval`: evaluate a CEL expression against JSON variables.
///
/// ```swift
/// CELEvalTool.evaluateJSONLine(#"{"expr": "x + 1", "bindings": {"x": 41}}"#)
/// // {"value":42,"type":"int"}
/// CELEvalTool.evaluateJSONLine(#"{"expr": "1 / 0"}"#)
/// // {"error":"division by zero"}
/// ```
///
/// The declared variables are exactly the keys of the bindings, so an expression naming
/// anything else fails to compile (`1:1: undeclared reference to 'y'`).
package enum CELEvalTool {
    /// Answers one `eval --jsonl` input line, `{"expr": "...", "bindings": {...}}`
    /// (`bindings` optional), with one compact JSON line (no trailing newline):
    /// `{"value": V, "type": "int"}` or `{"error": "message"}`. Never throws or traps,
    /// whatever the line holds.
    package static func evaluateJSONLine(_ line: String) -> String {
        let answer: JSONValue
        switch parseRequest(line) {
        case .failure(let error):
            answer = .object(["error": .string(error.message)])
        case .success(let (expression, bindings)):
            switch evaluate(expression: expression, variables: bindings) {
            case .success(let result):
                answer = .object(["value": result.value, "type": .string(result.type)])
            case .failure(let error):
                answer = .object(["error": .string(error.message)])
            }
        }
        return answer.compactString
    }

    /// Evaluates `expression` with the members of the JSON object `variables` as its
    /// variables. The result is the value as JSON (see ``CELValue/jsonValue``) and its
    /// CEL type name, which tells `1.0` (`"double"`) from `1` (`"int"`) and a timestamp
    /// from a string. The failure is a compile error (`LINE:COLUMN: message`) or an
    /// evaluation error.
    ///
    /// - Parameter now: when given, `now` is a variable holding this timestamp (unless
    ///   `variables` has a member `now`), as in a rule's condition.
    package static func evaluate(expression: String, variables: JSONValue, now: Date? = nil)
        -> Result<(value: JSONValue, type: String), CELEvalToolError>
    {
        guard case .object(let object) = variables else {
            return .failure(CELEvalToolError(message: "the variables must be a JSON object"))
        }
        var activation: [String: CELValue] = [:]
        if let now { activation["now"] = .timestamp(CELTimestamp(date: now)) }
        for member in object { activation[member.key] = CELValue(json: member.value) }
        return evaluate(
            expression: expression, declarations: CELDeclarations(variables: Set(activation.keys)),
            activation: CELActivation(activation))
    }

    /// Evaluates `expression` exactly as a rule's `when` sees `event`: the variables of
    /// ``RuleVariables`` (`event`, `chat`, `previous` as `{}` for an added chat,
    /// `changes`, `kinds`, `type`, `source`, `now`, `muted`), `now` being `now`.
    ///
    /// ```swift
    /// CELEvalTool.evaluate(expression: "has(previous.unread_count)", event: added, now: Date())
    /// // .success((value: false, type: "bool"))
    /// ```
    package static func evaluate(expression: String, event: Event, now: Date)
        -> Result<(value: JSONValue, type: String), CELEvalToolError>
    {
        evaluate(
            expression: expression, declarations: RuleVariables.declarations,
            activation: RuleVariables.activation(for: event, now: now))
    }

    private static func evaluate(expression: String, declarations: CELDeclarations, activation: CELActivation)
        -> Result<(value: JSONValue, type: String), CELEvalToolError>
    {
        let program: CELProgram
        do throws(CELCompileError) {
            program = try CELProgram.compile(expression, declarations: declarations)
        } catch {
            return .failure(CELEvalToolError(message: error.description, isCompileError: true))
        }
        switch program.evaluate(activation) {
        case .success(let value):
            return .success((value: value.jsonValue, type: value.typeName))
        case .failure(let error):
            return .failure(CELEvalToolError(message: error.message))
        }
    }

    private static func parseRequest(_ line: String) -> Result<(String, JSONValue), CELEvalToolError> {
        let request: JSONValue
        do {
            request = try JSONValue.parse(line)
        } catch {
            return .failure(CELEvalToolError(message: "the input line is not JSON: \(error)"))
        }
        guard case .object(let object) = request else {
            return .failure(CELEvalToolError(message: #"each input line must be a JSON object {"expr": ..., "bindings": {...}}"#))
        }
        guard case .string(let expression)? = object["expr"] else {
            return .failure(CELEvalToolError(message: #"the input line has no "expr" string"#))
        }
        let bindings = object["bindings"] ?? .object(JSONObject())
        guard case .object = bindings else {
            return .failure(CELEvalToolError(message: #""bindings" must be a JSON object"#))
        }
        return .success((expression, bindings))
    }
}
