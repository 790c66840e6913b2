import CEL
import Testing

@Suite("CEL load-time checks")
struct CompileErrorTests {
    @Test func unknownVariableIsReportedAtItsPosition() throws {
        let error = try #require(compileError(#"chat.name == "x" && chta.unread_count > 0"#, declared: ["chat"]))
        #expect(error.message == "undeclared reference to 'chta'")
        #expect(error.line == 1)
        #expect(error.column == 21)
        #expect(error.offset == 20)
        #expect(error.description == "1:21: undeclared reference to 'chta'")
    }

    @Test func positionsCountCodePointsAndLines() throws {
        // "é" is one code point (two UTF-8 bytes); the emoji is one code point (two UTF-16 units).
        let source = "chat.name == \"é🐱\" &&\n  chat.count > 0 &&\n    missing"
        let error = try #require(compileError(source, declared: ["chat"]))
        #expect(error.message == "undeclared reference to 'missing'")
        #expect((error.line, error.column) == (3, 5))
        #expect(error.offset == 45)
    }

    @Test func syntaxErrorColumnInsideAMultiLineExpression() throws {
        let source = "chat.account_type == \"LINKEDIN\"\n  && chat.unread_count >\n  && true"
        let error = try #require(compileError(source, declared: ["chat"]))
        #expect(error.message.hasPrefix("syntax error"))
        #expect((error.line, error.column) == (3, 3))
    }

    @Test func windowsLineEndsCountAsOneLineBreak() throws {
        let error = try #require(compileError("true &&\r\n  nope", declared: []))
        #expect((error.line, error.column) == (2, 3))
    }

    @Test func unknownFunction() throws {
        let error = try #require(compileError("lower(chat.name) == 'acme'", declared: ["chat"]))
        #expect(error.message == "undeclared reference to function 'lower'")
        #expect((error.line, error.column) == (1, 1))
        let method = try #require(compileError("chat.name.toLower() == 'acme'", declared: ["chat"]))
        #expect(method.message == "undeclared reference to function 'toLower'")
        #expect(method.column == 11)
    }

    @Test func wrongArityAndCallStyle() throws {
        #expect(compileError("size(1, 2)")?.message == "'size' takes 1 argument, got 2")
        #expect(compileError("'a'.contains()")?.message == "'contains' takes 1 argument, got 0")
        #expect(compileError("contains('a', 'b')")?.message == "'contains' is a method; call it as x.contains(…)")
        #expect(compileError("'1'.int()")?.message == "'int' is not a method; call it as int(x)")
        #expect(compileError("timestamp(0).getHours('UTC', 1)")?.message == "'getHours' takes 0 or 1 arguments, got 2")
    }

    @Test func malformedMacros() throws {
        let notAName = try #require(compileError("[1, 2].all(x.y, true)", declared: ["x"]))
        #expect(notAName.message == "the first argument of all() must be a variable name")
        #expect(notAName.column == 14)  // at the selected field
        #expect(compileError("[1].exists(x)")?.message == "exists() takes 2 arguments, got 1")
        #expect(compileError("[1].map(x, x, x, x)")?.message == "map() takes 2 or 3 arguments, got 4")
        #expect(compileError("has(chat)", declared: ["chat"])?.message == "has() takes one field selection, e.g. has(chat.name)")
        #expect(compileError("has(1 + 2)")?.column == 1)
    }

    @Test func macroVariablesAreScopedToTheirMacro() throws {
        #expect(compileError("[1, 2].all(x, x > 0)") == nil)
        let leaked = try #require(compileError("[1, 2].all(x, x > 0) && x > 0"))
        #expect(leaked.message == "undeclared reference to 'x'")
        #expect(leaked.column == 25)
        #expect(compileError("[[1]].all(x, x.exists(y, y == x[0]))") == nil)
    }

    @Test func typeMayBeDeclaredAsAVariable() throws {
        let event: [String: CELValue] = ["type": "chat.updated", "kinds": ["unread.increased"]]
        #expect(try value(#"type == "chat.updated" && "unread.increased" in kinds"#, event) == true)
        #expect(try value("type.startsWith('chat.')", event) == true)
        // Undeclared, it is an unknown name like any other.
        #expect(compileError("type == 'x'")?.message == "undeclared reference to 'type'")
    }

    @Test func reservedWordsAndUnsupportedSyntax() throws {
        #expect(compileError("while")?.message == "'while' is a reserved word")
        #expect(try value("{'while': 1}.while") == 1)
        #expect(compileError("a = 1", declared: ["a"])?.message == "unexpected '='; use '==' to compare")
        #expect(compileError("b'abc'")?.message == "bytes literals are not supported")
        #expect(compileError(".x", declared: ["x"])?.message == "leading-dot names (.name) are not supported")
        #expect(compileError("9223372036854775808")?.message == "integer literal out of range")
        #expect(compileError("-9223372036854775809")?.message == "integer literal out of range")
        #expect(compileError("1e999")?.message == "double literal out of range")
        #expect(compileError("'abc")?.message == "unterminated string literal")
        #expect(compileError("'a\nb'")?.line == 1)
        #expect(compileError(#"'\q'"#)?.message == #"invalid escape sequence \q"#)
        #expect(compileError(#"'\uD800'"#)?.message == "invalid escape: not a Unicode code point")
        #expect(compileError("1 +")?.message == "syntax error: expected an expression, found end of expression")
        #expect(compileError("(1")?.message == "syntax error: expected ')' to close the parenthesis, found end of expression")
        #expect(compileError("1 2")?.message == "syntax error: expected end of expression, found a number")
    }

    @Test func literalRegularExpressionsAndTimeZonesAreCheckedAtLoad() throws {
        let regex = try #require(compileError("chat.name.matches('(a')", declared: ["chat"]))
        #expect(regex.message == #"invalid regular expression: missing ): "(a" (at character 1 of the pattern)"#)
        #expect(regex.column == 19)
        #expect(compileError(#"'aa'.matches('(a)\\1')"#)?.message
            == "invalid regular expression: a backreference is not supported (RE2 syntax) (at character 4 of the pattern)")
        #expect(compileError("'a'.matches('(?=a)')")?.message
            == "invalid regular expression: lookaround is not supported (RE2 syntax) (at character 1 of the pattern)")
        let zone = try #require(compileError("now.getHours('europe/paris')", declared: ["now"]))
        #expect(zone.message.hasPrefix("unknown time zone \"europe/paris\""))
        #expect(zone.column == 14)
        #expect(compileError("now.getHours('../../etc/passwd')", declared: ["now"]) != nil)
        #expect(compileError("now.getHours(1)", declared: ["now"])?.message == "a time zone is a string, not int")
    }

    @Test func commentsAndWhitespace() throws {
        #expect(try value("1 + // one\n 2 // two") == 3)
    }
}
