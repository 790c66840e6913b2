/// A parsed expression node with its place in the source.
struct Expr: Sendable {
    let kind: ExprKind
    /// Code-point offset of the token that names the node (an operator, an identifier,
    /// a function name, an opening bracket).
    let offset: Int
    /// 1 for a leaf; 1 + the tallest child otherwise. Bounded so that evaluation, which
    /// recurses once per level, cannot exhaust a thread's stack.
    let height: Int
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case `in` = "in"
}

enum UnaryOperator: String, Sendable {
    case not = "!", negate = "-"
}

indirect enum ExprKind: Sendable {
    case literal(CELValue)
    case identifier(String)
    case select(Expr, field: String)
    case index(Expr, Expr)
    /// `name(args)`, or `target.name(args)` when `target` is set.
    case call(name: String, target: Expr?, arguments: [Expr])
    case list([Expr])
    case map([(key: Expr, value: Expr)])
    case unary(UnaryOperator, Expr)
    case binary(BinaryOperator, Expr, Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case conditional(Expr, Expr, Expr)
}

/// A recursive-descent parser for the CEL grammar (CEL spec, "Syntax"):
///
/// ```
/// Expr           = ConditionalOr ["?" ConditionalOr ":" Expr]
/// ConditionalOr  = [ConditionalOr "||"] ConditionalAnd
/// ConditionalAnd = [ConditionalAnd "&&"] Relation
/// Relation       = [Relation Relop] Addition
/// Addition       = [Addition ("+" | "-")] Multiplication
/// Multiplication = [Multiplication ("*" | "/" | "%")] Unary
/// Unary          = Member | "!" {"!"} Member | "-" {"-"} Member
/// Member         = Primary | Member "." IDENT ["(" [ExprList] ")"] | Member "[" Expr "]"
/// Primary        = IDENT ["(" [ExprList] ")"] | "(" Expr ")" | "[" [ExprList] [","] "]"
///                | "{" [MapInits] [","] "}" | LITERAL
/// ```
///
/// Message construction (`Type{field: v}`) and leading-dot names are not supported.
struct Parser {
    private let source: SourceText
    private let tokens: [Token]
    private var position = 0
    private var nesting = 0

    /// Deepest nesting of parentheses, brackets, calls and conditionals accepted, and the
    /// tallest expression tree. Real conditions stay far below; the limits turn a hostile
    /// or generated 10,000-deep expression into a compile error instead of a crash.
    static let maximumNesting = 100
    static let maximumHeight = 200

    /// Words CEL reserves: they may name map fields (`m.for`) but not variables or functions.
    static let reservedWords: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop",
        "package", "namespace", "return", "var", "void", "while",
    ]

    static func parse(_ source: SourceText) throws(CELCompileError) -> Expr {
        var parser = Parser(source: source, tokens: try Lexer.tokenize(source))
        let expr = try parser.parseExpression()
        guard case .end = parser.current.kind else {
            throw parser.unexpected("end of expression")
        }
        return expr
    }

    private init(source: SourceText, tokens: [Token]) {
        self.source = source
        self.tokens = tokens
    }

    // MARK: Helpers

    private var current: Token { tokens[position] }

    private mutating func advance() -> Token {
        let token = tokens[position]
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    private func isPunctuation(_ p: Punctuation) -> Bool {
        if case .punctuation(let q) = current.kind { return p == q }
        return false
    }

    private mutating func accept(_ p: Punctuation) -> Bool {
        guard isPunctuation(p) else { return false }
        _ = advance()
        return true
    }

    private mutating func expect(_ p: Punctuation, _ what: String) throws(CELCompileError) {
        guard accept(p) else { throw unexpected("'\(p.rawValue)' \(what)") }
    }

    private func unexpected(_ expected: String) -> CELCompileError {
        let found: String
        switch current.kind {
        case .end: found = "end of expression"
        case .identifier(let name): found = "'\(name)'"
        case .punctuation(let p): found = "'\(p.rawValue)'"
        case .int, .uint, .double: found = "a number"
        case .string: found = "a string"
        case .bool(let b): found = "'\(b)'"
        case .null: found = "'null'"
        }
        return source.error("syntax error: expected \(expected), found \(found)", at: current.offset)
    }

    private func node(_ kind: ExprKind, at offset: Int, children: [Expr]) throws(CELCompileError) -> Expr {
        let height = 1 + (children.map(\.height).max() ?? 0)
        guard height <= Self.maximumHeight else {
            throw source.error("expression is nested too deeply (more than \(Self.maximumHeight) levels)", at: offset)
        }
        return Expr(kind: kind, offset: offset, height: height)
    }

    /// Counts one level of `parseExpression` recursion: every parenthesis, list element,
    /// map entry, argument, index and conditional branch goes through it.
    private mutating func enter() throws(CELCompileError) {
        nesting += 1
        guard nesting <= Self.maximumNesting else {
            throw source.error("expression is nested too deeply (more than \(Self.maximumNesting) levels)",
                               at: current.offset)
        }
    }

    // MARK: Grammar

    private mutating func parseExpression() throws(CELCompileError) -> Expr {
        try enter()
        defer { nesting -= 1 }
        let condition = try parseOr()
        guard isPunctuation(.question) else { return condition }
        let offset = advance().offset
        let then = try parseOr()
        try expect(.colon, "in a conditional (a ? b : c)")
        let otherwise = try parseExpression()
        return try node(.conditional(condition, then, otherwise), at: offset, children: [condition, then, otherwise])
    }

    private mutating func parseOr() throws(CELCompileError) -> Expr {
        var left = try parseAnd()
        while isPunctuation(.or) {
            let offset = advance().offset
            let right = try parseAnd()
            left = try node(.or(left, right), at: offset, children: [left, right])
        }
        return left
    }

    private mutating func parseAnd() throws(CELCompileError) -> Expr {
        var left = try parseRelation()
        while isPunctuation(.and) {
            let offset = advance().offset
            let right = try parseRelation()
            left = try node(.and(left, right), at: offset, children: [left, right])
        }
        return left
    }

    private mutating func parseRelation() throws(CELCompileError) -> Expr {
        var left = try parseAddition()
        while case .punctuation(let p) = current.kind {
            let op: BinaryOperator
            switch p {
            case .equal: op = .equal
            case .notEqual: op = .notEqual
            case .less: op = .less
            case .lessEqual: op = .lessEqual
            case .greater: op = .greater
            case .greaterEqual: op = .greaterEqual
            case .in: op = .in
            default: return left
            }
            let offset = advance().offset
            let right = try parseAddition()
            left = try node(.binary(op, left, right), at: offset, children: [left, right])
        }
        return left
    }

    private mutating func parseAddition() throws(CELCompileError) -> Expr {
        var left = try parseMultiplication()
        while isPunctuation(.plus) || isPunctuation(.minus) {
            let op: BinaryOperator = isPunctuation(.plus) ? .add : .subtract
            let offset = advance().offset
            let right = try parseMultiplication()
            left = try node(.binary(op, left, right), at: offset, children: [left, right])
        }
        return left
    }

    private mutating func parseMultiplication() throws(CELCompileError) -> Expr {
        var left = try parseUnary()
        while true {
            let op: BinaryOperator
            if isPunctuation(.star) { op = .multiply } else if isPunctuation(.slash) { op = .divide } else if isPunctuation(.percent) { op = .remainder } else { return left }
            let offset = advance().offset
            let right = try parseUnary()
            left = try node(.binary(op, left, right), at: offset, children: [left, right])
        }
    }

    private mutating func parseUnary() throws(CELCompileError) -> Expr {
        var operators: [(UnaryOperator, Int)] = []
        while isPunctuation(.bang) || isPunctuation(.minus) {
            let op: UnaryOperator = isPunctuation(.bang) ? .not : .negate
            operators.append((op, advance().offset))
        }
        // A '-' right before a number literal is the literal's sign: that is how
        // -9223372036854775808 is written.
        var operand: Expr
        if let (last, offset) = operators.last, last == .negate, let literal = try negativeLiteral(at: offset) {
            operators.removeLast()
            operand = try parseMemberSuffixes(literal)
        } else {
            operand = try parseMember()
        }
        for (op, offset) in operators.reversed() {
            operand = try node(.unary(op, operand), at: offset, children: [operand])
        }
        return operand
    }

    private mutating func negativeLiteral(at offset: Int) throws(CELCompileError) -> Expr? {
        switch current.kind {
        case .int(let magnitude):
            _ = advance()
            guard magnitude <= UInt64(Int64.max) + 1 else { throw source.error("integer literal out of range", at: offset) }
            let value = magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
            return try node(.literal(.int(value)), at: offset, children: [])
        case .double(let d):
            _ = advance()
            return try node(.literal(.double(-d)), at: offset, children: [])
        default:
            return nil
        }
    }

    private mutating func parseMember() throws(CELCompileError) -> Expr {
        try parseMemberSuffixes(try parsePrimary())
    }

    private mutating func parseMemberSuffixes(_ start: Expr) throws(CELCompileError) -> Expr {
        var expr = start
        while true {
            if isPunctuation(.dot) {
                _ = advance()
                guard case .identifier(let name) = current.kind else {
                    throw unexpected("a field or method name after '.'")
                }
                let offset = advance().offset
                if isPunctuation(.leftParen) {
                    let arguments = try parseArguments()
                    expr = try node(.call(name: name, target: expr, arguments: arguments), at: offset,
                                    children: [expr] + arguments)
                } else {
                    expr = try node(.select(expr, field: name), at: offset, children: [expr])
                }
            } else if isPunctuation(.leftBracket) {
                let offset = advance().offset
                let index = try parseExpression()
                try expect(.rightBracket, "to close the index")
                expr = try node(.index(expr, index), at: offset, children: [expr, index])
            } else if isPunctuation(.leftBrace), case .identifier = start.kind, start.offset == expr.offset {
                throw source.error("message construction (Type{...}) is not supported", at: current.offset)
            } else {
                return expr
            }
        }
    }

    /// `( [Expr {"," Expr}] )`, starting at the opening parenthesis.
    private mutating func parseArguments() throws(CELCompileError) -> [Expr] {
        try expect(.leftParen, "")
        var arguments: [Expr] = []
        if accept(.rightParen) { return arguments }
        repeat {
            arguments.append(try parseExpression())
        } while accept(.comma)
        try expect(.rightParen, "to close the argument list")
        return arguments
    }

    private mutating func parsePrimary() throws(CELCompileError) -> Expr {
        let token = current
        switch token.kind {
        case .int(let magnitude):
            _ = advance()
            guard let value = Int64(exactly: magnitude) else {
                throw source.error("integer literal out of range", at: token.offset)
            }
            return try node(.literal(.int(value)), at: token.offset, children: [])
        case .uint(let value):
            _ = advance()
            return try node(.literal(.uint(value)), at: token.offset, children: [])
        case .double(let value):
            _ = advance()
            return try node(.literal(.double(value)), at: token.offset, children: [])
        case .string(let value):
            _ = advance()
            return try node(.literal(.string(value)), at: token.offset, children: [])
        case .bool(let value):
            _ = advance()
            return try node(.literal(.bool(value)), at: token.offset, children: [])
        case .null:
            _ = advance()
            return try node(.literal(.null), at: token.offset, children: [])
        case .identifier(let name):
            _ = advance()
            if Self.reservedWords.contains(name) {
                throw source.error("'\(name)' is a reserved word", at: token.offset)
            }
            if isPunctuation(.leftParen) {
                let arguments = try parseArguments()
                return try node(.call(name: name, target: nil, arguments: arguments), at: token.offset,
                                children: arguments)
            }
            return try node(.identifier(name), at: token.offset, children: [])
        case .punctuation(.leftParen):
            _ = advance()
            let inner = try parseExpression()
            try expect(.rightParen, "to close the parenthesis")
            return inner
        case .punctuation(.leftBracket):
            _ = advance()
            var elements: [Expr] = []
            while !isPunctuation(.rightBracket) {
                elements.append(try parseExpression())
                if !accept(.comma) { break }
            }
            try expect(.rightBracket, "to close the list")
            return try node(.list(elements), at: token.offset, children: elements)
        case .punctuation(.leftBrace):
            _ = advance()
            var entries: [(key: Expr, value: Expr)] = []
            var children: [Expr] = []
            while !isPunctuation(.rightBrace) {
                let key = try parseExpression()
                try expect(.colon, "after a map key")
                let value = try parseExpression()
                entries.append((key, value))
                children.append(key)
                children.append(value)
                if !accept(.comma) { break }
            }
            try expect(.rightBrace, "to close the map")
            return try node(.map(entries), at: token.offset, children: children)
        case .punctuation(.dot):
            throw source.error("leading-dot names (.name) are not supported", at: token.offset)
        default:
            throw unexpected("an expression")
        }
    }
}
