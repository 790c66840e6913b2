import Foundation
import ChatBridgeCore

extension RuleCondition {
    /// The variable paths the condition's text reads (`chat.account_type`, `previous.unread_count`,
    /// `kinds`), in the order written, each once: what `chatbridge explain` shows the values
    /// of when a condition is false. Text inside string literals is skipped, and a method
    /// call's name is not part of a path (`chat.name.matches(...)` reads `chat.name`).
    package var readPaths: [String] {
        let scalars = Array(source.unicodeScalars)
        var paths: [String] = []
        var index = 0
        func isStart(_ s: Unicode.Scalar) -> Bool { s == "_" || ("a"..."z").contains(s) || ("A"..."Z").contains(s) }
        func isPart(_ s: Unicode.Scalar) -> Bool { isStart(s) || ("0"..."9").contains(s) }
        func identifier(at start: Int) -> (String, Int) {
            var end = start
            while end < scalars.count, isPart(scalars[end]) { end += 1 }
            return (String(String.UnicodeScalarView(scalars[start..<end])), end)
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\"" || scalar == "'" {
                index += 1
                while index < scalars.count, scalars[index] != scalar {
                    index += scalars[index] == "\\" ? 2 : 1
                }
                index += 1
                continue
            }
            guard isStart(scalar) else { index += 1; continue }
            let previousIsDot = index > 0 && scalars[index - 1] == "."
            var (name, end) = identifier(at: index)
            guard !previousIsDot, RuleVariables.names.contains(name) else { index = end; continue }
            var components = [name]
            while end + 1 < scalars.count, scalars[end] == ".", isStart(scalars[end + 1]) {
                (name, end) = identifier(at: end + 1)
                components.append(name)
            }
            if end < scalars.count, scalars[end] == "(", components.count > 1 { components.removeLast() }
            let path = components.joined(separator: ".")
            if !paths.contains(path) { paths.append(path) }
            index = end
        }
        return paths
    }

    /// The values of ``readPaths`` for `event` at `now`, as a rule sees them; `nil` for a
    /// path that has no value (a missing key).
    package func readValues(for event: Event, now: Date) -> [(path: String, value: JSONValue?)] {
        readPaths.map { path in
            switch CELEvalTool.evaluate(expression: path, event: event, now: now) {
            case .success(let result): (path, result.value)
            case .failure: (path, nil)
            }
        }
    }
}
