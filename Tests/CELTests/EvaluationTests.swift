import CEL
import Testing

@Suite("CEL evaluation")
struct EvaluationTests {
    static let chat: CELValue = [
        "id": "c1", "account_type": "LINKEDIN", "content_type": "inmail", "unread_count": 3,
        "archived": 0, "name": "ACME — Sales", "attendees": ["Ann", "Bob"],
    ]

    @Test func typicalRuleConditions() throws {
        let variables: [String: CELValue] = ["chat": Self.chat, "kinds": ["unread.increased"], "changes": ["unread_count": [1, 3]]]
        #expect(try value(#"chat.account_type == "LINKEDIN" && chat.content_type == "inmail" && chat.unread_count > 0"#, variables) == true)
        #expect(try value(#""unread.increased" in kinds && chat.account_type == "WHATSAPP""#, variables) == false)
        #expect(try value("has(changes.unread_count) && chat.archived == 1", variables) == false)
        #expect(try value("has(changes.archived)", variables) == false)
        #expect(try value("chat.archived == true", variables) == false)  // API booleans are 0/1
        #expect(try value("chat.attendees.exists(a, a.startsWith('B'))", variables) == true)
        #expect(try value("chat.attendees.map(a, a.size())", variables) == [3, 3])
        #expect(try value("chat.attendees.map(a, a != 'Ann', a + '!')", variables) == ["Bob!"])
        #expect(try value("chat.attendees.filter(a, a < 'B')", variables) == ["Ann"])
        #expect(try value("chat.attendees.exists_one(a, a.size() == 3)", variables) == false)
        #expect(try value("chat.all(k, k.size() > 1)", variables) == true)
    }

    @Test func aProgramListsTheVariablesItReads() throws {
        let declarations = CELDeclarations(variables: ["chat", "kinds", "changes", "now"])
        #expect(try CELProgram.compile(#"chat.unread_count > 0 && "x" in kinds"#, declarations: declarations).globals
            == ["chat", "kinds"])
        #expect(try CELProgram.compile("true", declarations: declarations).globals.isEmpty)
        // A macro's own variable is not a global, even when it shadows one.
        #expect(try CELProgram.compile("[1, 2].all(chat, chat > 0) && has(changes.x)", declarations: declarations).globals
            == ["changes"])
    }

    @Test func missingFieldsAndVariablesAreErrorsNotCrashes() throws {
        let variables: [String: CELValue] = ["chat": Self.chat]
        #expect(try evaluationError("chat.muted_until > 0", variables)?.message == "no such key: 'muted_until'")
        #expect(try evaluationError("chat.unread_count.value", variables)?.message
            == "type 'int' does not support field selection (.value)")
        #expect(try evaluationError("chat['nope']", variables)?.message == #"no such key: "nope""#)
        #expect(try evaluationError("chat.attendees[5]", variables)?.message == "index out of range: 5 (list size 2)")
        // Declared but not bound at evaluation time.
        let program = try CELProgram.compile("chat.id == 'c1'", declarations: CELDeclarations(variables: ["chat"]))
        guard case .failure(let error) = program.evaluate(CELActivation([:])) else {
            Issue.record("expected an error")
            return
        }
        #expect(error.message == "no value given for variable 'chat'")
    }

    @Test func integerOverflowAndDivisionByZero() throws {
        #expect(try evaluationError("9223372036854775807 + 1")?.message == "integer overflow in '+'")
        #expect(try evaluationError("-9223372036854775808 - 1")?.message == "integer overflow in '-'")
        #expect(try evaluationError("x * 2", ["x": .int(.max / 2 + 1)])?.message == "integer overflow in '*'")
        #expect(try evaluationError("-x", ["x": .int(.min)])?.message == "integer overflow in '-'")
        #expect(try evaluationError("x / -1", ["x": .int(.min)])?.message == "integer overflow in '/'")
        #expect(try evaluationError("x % -1", ["x": .int(.min)])?.message == "integer overflow in '%'")
        #expect(try evaluationError("1 / 0")?.message == "division by zero")
        #expect(try evaluationError("1 % 0")?.message == "modulus by zero")
        #expect(try evaluationError("1u - 2u")?.message == "integer overflow in '-'")
        #expect(try value("-7 / 2") == -3)
        #expect(try value("-7 % 2") == -1)
        #expect(try value("1.0 / 0.0") == .double(.infinity))
    }

    @Test func intAndDoubleMixInComparisonsButNotArithmetic() throws {
        #expect(try value("3 == 3.0") == true)
        #expect(try value("x > 2.5", ["x": 3]) == true)
        #expect(try value("[1, 2] == [1.0, 2.0]") == true)
        #expect(try value("{'a': 1} == {'a': 1.0}") == true)
        #expect(try value("1u == 1") == true)
        #expect(try value("2u > -1") == true)
        #expect(try evaluationError("chat.unread_count + 0.5", ["chat": Self.chat])?.message
            == "no matching overload for '+' applied to (int, double)")
        #expect(try evaluationError("47.5 % 5.5")?.message == "no matching overload for '%' applied to (double, double)")
        #expect(try value("'a' == 1") == false)  // equality across types is false, not an error
        #expect(try evaluationError("'a' < 1")?.message == "no matching overload for '<' applied to (string, int)")
        #expect(try evaluationError("null < null") != nil)
        #expect(try evaluationError("[1] < [2]") != nil)
        #expect(try evaluationError("{} <= {}") != nil)
    }

    @Test func errorsAreAbsorbedByTheDecidingSideOfAndOr() throws {
        let variables: [String: CELValue] = ["chat": Self.chat]
        #expect(try value("chat.missing == 1 || true", variables) == true)
        #expect(try value("true || chat.missing == 1", variables) == true)
        #expect(try value("chat.missing == 1 && false", variables) == false)
        #expect(try value("false && chat.missing == 1", variables) == false)
        #expect(try evaluationError("chat.missing == 1 && true", variables)?.message == "no such key: 'missing'")
        #expect(try evaluationError("true || 1 / 0 == 1") == nil)
        #expect(try evaluationError("1 / 0 == 1 || chat.missing", variables)?.message == "division by zero")
        #expect(try value("'horses' || true") == true)
        #expect(try evaluationError("'horses' || false")?.message == "no matching overload for '||' applied to (string, bool)")
        // The same for the macros built on them.
        #expect(try value("[0, 1].exists(n, 1 / n == 1)") == true)
        #expect(try value("[0, 1].all(n, 1 / n == 2)") == false)
        #expect(try evaluationError("[0, 1].all(n, 1 / n == 1)")?.message == "division by zero")
        #expect(try evaluationError("[0, 1].exists_one(n, 1 / n == 1)")?.message == "division by zero")
        // Only the chosen branch of a conditional is evaluated.
        #expect(try value("true ? 1 : 1 / 0") == 1)
        #expect(try evaluationError("1 ? 2 : 3")?.message == "no matching overload for '_?_:_' applied to (int)")
    }

    @Test func conversions() throws {
        #expect(try value("string(1.5)") == "1.5")
        #expect(try value("string(100.0)") == "100")
        #expect(try value("string(1e6)") == "1e+06")
        #expect(try value("string(123456.0)") == "123456")
        #expect(try value("string(0.0001)") == "0.0001")
        #expect(try value("string(1.0e-7)") == "1e-07")
        #expect(try value("string(-0.0)") == "-0")
        #expect(try value("string(true)") == "true")
        #expect(try value("string(18446744073709551615u)") == "18446744073709551615")
        #expect(try value("int('-42')") == -42)
        #expect(try value("int(true)") == 1)
        #expect(try evaluationError("int('4 2')") != nil)
        #expect(try evaluationError("int(1e19)")?.message == "int() out of range: double outside the int64 range")
        #expect(try value("uint(42)") == .uint(42))
        #expect(try evaluationError("uint(-1)") != nil)
        #expect(try value("double('2.5')") == 2.5)
        #expect(try value("bool('t')") == true)
        #expect(try value("dyn([1])") == [1])
        #expect(try evaluationError("int(null)")?.message == "no matching overload for 'int' applied to (null)")
    }

    @Test func mapsAndLists() throws {
        #expect(try value("{'a': 1, 'b': 2}.b") == 2)
        #expect(try value("'b' in {'a': 1, 'b': 2}") == true)
        #expect(try value("2 in {1: 'x', 2: 'y'}") == true)
        #expect(try value("{1: 'x'}[1.0]") == "x")
        #expect(try evaluationError("{'a': 1, 'a': 2}")?.message == #"repeated map key "a""#)
        #expect(try evaluationError("{[1]: 2}")?.message == "a map key cannot be a list")
        #expect(try value("size({'a': 1}) + size([1, 2]) + [1].size()") == 4)
        #expect(try value("[1, 2] + [3]") == [1, 2, 3])
        #expect(try value("[1, 'a', null] == [1, 'a', null]") == true)
        #expect(try value("[[1], {'k': [true]}][1].k[0]") == true)
    }

    @Test func largeMapsUseTheirIndex() throws {
        var pairs: [(CELValue, CELValue)] = []
        for i in 0..<200 { pairs.append((.string("k\(i)"), .int(Int64(i)))) }
        pairs.append((.string("k7"), .int(-7)))  // a repeated key keeps its last value
        let map = CELMap(pairs)
        #expect(map.count == 200)
        #expect(map["k199"] == 199)
        #expect(map["k7"] == -7)
        #expect(try value("m.k150 + m['k3'] + size(m)", ["m": .map(map)]) == 353)
        var copy = map
        copy[.string("k0")] = nil
        #expect(copy.count == 199 && copy["k0"] == nil && copy["k199"] == 199)
        #expect(copy != map)
        let reordered = CELMap(map.entries.reversed().map { ($0.key, $0.value) })
        #expect(reordered == map)
        #expect(reordered.hashValue == map.hashValue)
    }

    @Test func compiledProgramsAreReusableAndSendable() async throws {
        let program = try CELProgram.compile("[1, 2, 3].map(x, x * n).exists(y, y == target)",
                                             declarations: CELDeclarations(variables: ["n", "target"]))
        #expect(program.source == "[1, 2, 3].map(x, x * n).exists(y, y == target)")
        let results = await withTaskGroup(of: Bool.self) { group in
            for n in 1...20 {
                group.addTask {
                    program.evaluate(CELActivation(["n": .int(Int64(n)), "target": .int(Int64(3 * n))])) == .success(true)
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 20 && results.allSatisfy { $0 })
    }
}
