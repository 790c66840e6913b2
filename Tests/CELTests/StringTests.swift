import CEL
import Testing

@Suite("CEL strings and regular expressions")
struct StringTests {
    @Test func stringsAreCodePointsWithoutNormalisation() throws {
        let precomposed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(precomposed == decomposed)  // Swift says equal…
        let variables: [String: CELValue] = ["a": .string(precomposed), "b": .string(decomposed)]
        #expect(try value("a == b", variables) == false)  // …CEL does not.
        #expect(try value("a != b", variables) == true)
        #expect(try value("size(a)", variables) == 4)
        #expect(try value("size(b)", variables) == 5)
        #expect(try value("size('e\\u0301')") == 2)
        #expect(try value("b.contains('e')", variables) == true)
        #expect(try value("a.contains('e')", variables) == false)
        #expect(try value("b.startsWith('cafe')", variables) == true)
        #expect(try value("a.endsWith('\\u00e9')", variables) == true)
        #expect(try value("b.endsWith('\\u00e9')", variables) == false)
        #expect(try value("[a].exists(x, x == b)", variables) == false)
        #expect(try value("a in [b]", variables) == false)
        #expect(try value("{'\\u00e9': 1}.exists(k, k == 'e\\u0301')") == false)
        #expect(CELValue.string(precomposed) != CELValue.string(decomposed))
        #expect(CELMap([(.string(precomposed), 1), (.string(decomposed), 2)]).count == 2)
        #expect(try value("'🐱' + 'é'") == "🐱é")
        #expect(try value("'a' < 'é' && 'é' < '🐱'") == true)  // code point order
    }

    @Test func caseFunctionsTouchOnlyASCII() throws {
        #expect(try value("'ÉCOLE École'.lowerAscii()") == "École École")
        #expect(try value("'straße'.upperAscii()") == "STRAßE")
    }

    @Test func matchesIsARegexSearch() throws {
        let chat: [String: CELValue] = ["chat": ["name": "Deal with ACME Corp"]]
        #expect(try value(#"chat.name.matches("(?i)acme")"#, chat) == true)
        #expect(try value(#"chat.name.matches("acme")"#, chat) == false)
        #expect(try value(#"chat.name.matches("^ACME")"#, chat) == false)
        #expect(try value(#"matches(chat.name, "Corp$")"#, chat) == true)
        #expect(try value(#"chat.name.matches(r"\bACME\b")"#, chat) == true)
        #expect(try value(#"'x1'.matches('(?P<digit>[0-9])')"#) == true)
        #expect(try value(#"'🐱😀😀'.matches('^.😀{2}$')"#) == true)
        // A pattern that is only known at evaluation time is compiled then; a bad one is an error value.
        let dynamic: [String: CELValue] = ["name": "acme", "pattern": "(unclosed"]
        #expect(try evaluationError("name.matches(pattern)", dynamic)?.message
            == #"invalid regular expression: missing ): "(unclosed" (at character 1 of the pattern)"#)
        #expect(try evaluationError("name.matches(pattern) || true", dynamic) == nil)
        #expect(try evaluationError("1.matches('a')") != nil)
    }

    @Test func hostileChatTextIsJustData() throws {
        let hostile = [
            "'; DROP TABLE chats; --", "$(rm -rf /)", "`reboot`", "\"}]}{\"injected\":true", "line1\nline2\r\n",
            "\u{202E}evil\u{202C}", "\u{0}\u{1}\u{7F}", "<script>alert(1)</script>", "{{chat.name}}",
            "../../etc/passwd", String(repeating: "a", count: 100_000), "\\u0041\\",
        ]
        for text in hostile {
            let variables: [String: CELValue] = ["chat": ["name": .string(text)]]
            #expect(try value("chat.name == n", variables.merging(["n": .string(text)]) { a, _ in a }) == true)
            #expect(try value("size(chat.name) >= 0 && chat.name.contains('')", variables) == true)
            #expect(try value("chat.name.matches('^acme$')", variables) == false)
            #expect(try value("chat.name + '!'", variables) == .string(text + "!"))
            // Error messages quote data escaped and cut short: no raw line breaks or control characters.
            if let error = try evaluationError("{'a': 1}[chat.name]", variables) {
                #expect(!error.message.contains("\n") && !error.message.contains("\r") && !error.message.contains("\u{0}"))
                #expect(!error.message.contains("\u{202E}"))
                #expect(error.message.count < 120)
            } else {
                Issue.record("expected no such key")
            }
        }
    }

    @Test func substringSearchIsExactAndLinear() throws {
        #expect(try value("'abababc'.contains('ababc')") == true)
        #expect(try value("'aabaabaaa'.contains('aabaaa')") == true)
        #expect(try value("'aabaabaab'.contains('aabaaa')") == false)
        // Worst case for a naive search: both sides long and almost matching.
        let text = String(repeating: "a", count: 200_000)
        let needle = String(repeating: "a", count: 100_000) + "b"
        #expect(try value("t.contains(n)", ["t": .string(text), "n": .string(needle)]) == false)
        #expect(try value("t.contains(n)", ["t": .string(text + "b"), "n": .string(needle)]) == true)
    }

    @Test func oneCompiledRegexServesConcurrentEvaluations() async throws {
        let program = try CELProgram.compile(#"name.matches("(?i)^acme-[0-9]+$")"#,
                                             declarations: CELDeclarations(variables: ["name"]))
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<300 {
                        let name = i % 2 == 0 ? "ACME-\(task)\(i)" : "acme-x\(i)"
                        if program.evaluate(CELActivation(["name": .string(name)])) != .success(.bool(i % 2 == 0)) { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test func stringLiteralForms() throws {
        #expect(try value(#"r'\d+\n'"#) == #"\d+\n"#)
        #expect(try value("'''it's \"quoted\"\nacross lines'''") == "it's \"quoted\"\nacross lines")
        #expect(try value(#""\x41\101\u00e9\U0001F431""#) == "AAé🐱")
        #expect(try value(#"'\a\b\f\v\?\`'"#) == "\u{07}\u{08}\u{0C}\u{0B}?`")
    }
}
