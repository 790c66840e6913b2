import CEL
import Testing

/// The checker's static types: what is known before evaluation, `dyn` for the rest.
@Suite("CEL static types")
struct TypeTests {
    private let declarations = CELDeclarations(
        variables: ["chat", "kinds", "now", "muted", "anything"],
        types: [
            "chat": .object(["name": .string, "unread_count": .int, "folder": .list(.string)]),
            "kinds": .list(.string), "now": .timestamp, "muted": .bool,
        ])

    private func type(_ source: String) throws -> CELType {
        try CELProgram.compile(source, declarations: declarations).type
    }

    @Test func literalsAndOperators() throws {
        #expect(try type("1") == .int)
        #expect(try type("1u") == .uint)
        #expect(try type("1.5") == .double)
        #expect(try type("'a' + 'b'") == .string)
        #expect(try type("null") == .null)
        #expect(try type("[1, 2]") == .list(.int))
        #expect(try type("[1, 'a']") == .list(.dyn))
        #expect(try type("{'a': 1}") == .map(.int))
        #expect(try type("1 + 2 * 3") == .int)
        #expect(try type("-1.5") == .double)
        #expect(try type("1 < 2 && !false") == .bool)
        #expect(try type("1 + 1.0") == .dyn)  // no such overload: left to evaluation
        #expect(try type("true ? 1 : 2") == .int)
        #expect(try type("true ? 1 : 'a'") == .dyn)
    }

    @Test func declaredVariablesAndTheirFields() throws {
        #expect(try type("chat.unread_count") == .int)
        #expect(try type("chat['name']") == .string)
        #expect(try type("chat.folder[0]") == .string)
        #expect(try type("chat.unknown_field") == .dyn)
        #expect(try type("anything") == .dyn)
        #expect(try type("anything.x + 1") == .dyn)
        #expect(try type("kinds") == .list(.string))
        #expect(try type("now - now") == .duration)
        #expect(try type("now + duration('1h')") == .timestamp)
        #expect(try type("now.getHours('Europe/Paris')") == .int)
    }

    @Test func functionsAndMacros() throws {
        #expect(try type("size(kinds)") == .int)
        #expect(try type("chat.name.matches('a')") == .bool)
        #expect(try type("chat.name.lowerAscii()") == .string)
        #expect(try type("dyn(chat.unread_count)") == .dyn)
        #expect(try type("string(1)") == .string)
        #expect(try type("kinds.exists(k, k == 'a')") == .bool)
        #expect(try type("kinds.filter(k, k != 'a')") == .list(.string))
        #expect(try type("kinds.map(k, k + '!')") == .list(.string))
        #expect(try type("kinds.map(k, size(k))") == .list(.int))
        #expect(try type("has(chat.name)") == .bool)
    }

    @Test func expectingABoolRefusesOnlyWhatIsSureNotToBeOne() throws {
        #expect(throws: Never.self) { try CELProgram.compile("muted", declarations: declarations, expecting: .bool) }
        #expect(throws: Never.self) { try CELProgram.compile("anything.flag", declarations: declarations, expecting: .bool) }
        #expect(throws: Never.self) { try CELProgram.compile("dyn(1)", declarations: declarations, expecting: .bool) }
        #expect(throws: Never.self) { try CELProgram.compile("[1]", declarations: declarations, expecting: .list(.dyn)) }
        do {
            _ = try CELProgram.compile("  // unread\n chat.unread_count + 1", declarations: declarations, expecting: .bool)
            Issue.record("an int condition compiled")
        } catch {
            #expect(error.description == "2:2: the expression is of type int, not bool")
        }
    }
}
