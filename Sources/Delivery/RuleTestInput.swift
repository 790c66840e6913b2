import ChatBridgeCore

/// Why the input of `chatbridge rules test --event` holds no events.
package struct RuleTestInputError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}

/// The events of `chatbridge rules test --event FILE` (or `-`): one JSON value, written
/// compact or pretty (`jq . event.json | chatbridge rules test --event -`); a JSON array
/// of events; or JSON lines, one event per line (what `chatbridge events` prints).
///
/// ```swift
/// try RuleTestInput.events(in: Array(#"{"type":"chat.added"}"#.utf8)).count          // 1
/// try RuleTestInput.events(in: Array("{\"a\":1}\n{\"a\":2}\n".utf8)).count            // 2
/// ```
package enum RuleTestInput {
    /// The JSON values in `bytes`, in order. Blank lines between JSON lines are skipped.
    ///
    /// - Throws: ``RuleTestInputError`` saying which line is not JSON, or that there is
    ///   nothing at all.
    package static func events(in bytes: [UInt8]) throws(RuleTestInputError) -> [JSONValue] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard !text.allSatisfy(\.isWhitespace) else { throw RuleTestInputError(message: "no event: the input is empty") }
        let wholeError: JSONParseError
        do {
            let whole = try JSONValue.parse(bytes)
            if case .array(let items) = whole { return items }
            return [whole]
        } catch let error as JSONParseError {
            wholeError = error
        } catch {
            throw RuleTestInputError(message: "not JSON: \(error)")
        }
        // Not one value: JSON lines, each line one value.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let nonBlank = lines.enumerated().filter { !$0.element.allSatisfy(\.isWhitespace) }
        guard nonBlank.count > 1 else { throw RuleTestInputError(message: "not JSON: \(wholeError)") }
        var values: [JSONValue] = []
        for (index, line) in nonBlank {
            do {
                values.append(try JSONValue.parse(String(line)))
            } catch {
                throw RuleTestInputError(
                    message: "line \(index + 1) is not JSON (\(error)); give one JSON value, or one event per line")
            }
        }
        return values
    }
}
