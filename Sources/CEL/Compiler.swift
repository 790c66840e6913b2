/// The built-in functions (other than the timestamp accessors, which are ``CELTimeAccessor``).
enum Builtin: String, Sendable {
    case size, contains, startsWith, endsWith, matches, lowerAscii, upperAscii
    case int, uint, double, string, bool, dyn, timestamp, duration
}

/// The argument of a timestamp accessor that picks the time zone.
enum ZoneArgument: Sendable {
    case utc
    /// A literal zone, resolved once at compile time.
    case constant(CELTimeZone)
    case dynamic(Node)
}

/// An expanded macro: iterate `range` (a list's elements or a map's keys), binding each
/// item to local `slot`.
struct Comprehension: Sendable {
    enum Kind: String, Sendable {
        case all, exists, existsOne = "exists_one", map, filter
    }

    let kind: Kind
    let range: Node
    let slot: Int
    /// The condition of `all`, `exists`, `exists_one`, `filter`, and of the 3-argument `map`.
    let predicate: Node?
    /// What `map` produces for each item.
    let transform: Node?
}

/// The checked, resolved form of an expression that the evaluator walks: variables
/// resolved to globals or macro slots, functions to built-ins, literal regular
/// expressions and time zones compiled.
indirect enum Node: Sendable {
    case constant(CELValue)
    case global(String)
    case local(Int)
    case select(Node, field: String)
    case has(Node, field: String)
    case index(Node, Node)
    case not(Node)
    case negate(Node)
    case and(Node, Node)
    case or(Node, Node)
    case conditional(Node, Node, Node)
    case binary(BinaryOperator, Node, Node)
    case list([Node])
    case map(keys: [Node], values: [Node])
    /// A built-in; a method's receiver is the first argument.
    case call(Builtin, [Node])
    /// `matches` with a literal pattern, compiled once.
    case matches(Node, CELRegex)
    case timeAccessor(CELTimeAccessor, Node, zone: ZoneArgument)
    case comprehension(Comprehension)
}

/// The load-time checker: resolves names and functions, checks arities and macro shapes,
/// and produces the ``Node`` tree.
struct Compiler {
    private let source: SourceText
    private let declarations: CELDeclarations
    /// Variables bound by the enclosing macros, innermost last; a variable's slot is its index.
    private var scope: [String] = []
    /// How many macro slots evaluation needs.
    private(set) var slotCount = 0
    /// The declared variables the expression reads.
    private(set) var globals: Set<String> = []

    init(source: SourceText, declarations: CELDeclarations) {
        self.source = source
        self.declarations = declarations
    }

    /// How a function may be called: the argument counts (receiver not counted) as a
    /// global function and as a method.
    private struct Shape {
        var global: Set<Int> = []
        var method: Set<Int> = []
    }

    private static let shapes: [String: Shape] = {
        var table: [String: Shape] = [
            "size": Shape(global: [1], method: [0]),
            "contains": Shape(method: [1]),
            "startsWith": Shape(method: [1]),
            "endsWith": Shape(method: [1]),
            "matches": Shape(global: [2], method: [1]),
            "lowerAscii": Shape(method: [0]),
            "upperAscii": Shape(method: [0]),
        ]
        for conversion in ["int", "uint", "double", "string", "bool", "dyn", "timestamp", "duration"] {
            table[conversion] = Shape(global: [1])
        }
        for accessor in CELTimeAccessor.allCases { table[accessor.rawValue] = Shape(method: [0, 1]) }
        return table
    }()

    private static let macroArities: [String: Set<Int>] = [
        "all": [2], "exists": [2], "exists_one": [2], "filter": [2], "map": [2, 3],
    ]

    mutating func compile(_ expr: Expr) throws(CELCompileError) -> Node {
        switch expr.kind {
        case .literal(let value):
            return .constant(value)
        case .identifier(let name):
            if let slot = scope.lastIndex(of: name) { return .local(slot) }
            if declarations.variables.contains(name) {
                globals.insert(name)
                return .global(name)
            }
            throw source.error("undeclared reference to '\(name)'", at: expr.offset)
        case .select(let operand, let field):
            return .select(try compile(operand), field: field)
        case .index(let operand, let index):
            return .index(try compile(operand), try compile(index))
        case .unary(.not, let operand):
            return .not(try compile(operand))
        case .unary(.negate, let operand):
            return .negate(try compile(operand))
        case .binary(let op, let left, let right):
            return .binary(op, try compile(left), try compile(right))
        case .and(let left, let right):
            return .and(try compile(left), try compile(right))
        case .or(let left, let right):
            return .or(try compile(left), try compile(right))
        case .conditional(let condition, let then, let otherwise):
            return .conditional(try compile(condition), try compile(then), try compile(otherwise))
        case .list(let elements):
            var nodes: [Node] = []
            nodes.reserveCapacity(elements.count)
            for element in elements { nodes.append(try compile(element)) }
            // A list of literals is built once, not on every evaluation.
            var constants: [CELValue] = []
            for node in nodes {
                guard case .constant(let value) = node else { return .list(nodes) }
                constants.append(value)
            }
            return .constant(.list(constants))
        case .map(let entries):
            var keys: [Node] = [], values: [Node] = []
            for entry in entries {
                keys.append(try compile(entry.key))
                values.append(try compile(entry.value))
            }
            return .map(keys: keys, values: values)
        case .call(let name, let target, let arguments):
            return try compileCall(name, target: target, arguments: arguments, at: expr.offset)
        }
    }

    private mutating func compileCall(_ name: String, target: Expr?, arguments: [Expr], at offset: Int)
        throws(CELCompileError) -> Node
    {
        // Macros first: they bind names, so their arguments are not plain expressions.
        if target == nil, name == "has" {
            guard arguments.count == 1, case .select(let operand, let field) = arguments[0].kind else {
                throw source.error("has() takes one field selection, e.g. has(chat.name)", at: offset)
            }
            return .has(try compile(operand), field: field)
        }
        if let target, let arities = Self.macroArities[name] {
            guard arities.contains(arguments.count) else {
                let counts = arities.sorted().map(String.init).joined(separator: " or ")
                throw source.error("\(name)() takes \(counts) arguments, got \(arguments.count)", at: offset)
            }
            return try compileMacro(name, target: target, arguments: arguments)
        }

        guard let shape = Self.shapes[name] else {
            throw source.error("undeclared reference to function '\(name)'", at: offset)
        }
        var nodes: [Node] = []
        if let target {
            guard !shape.method.isEmpty else {
                throw source.error("'\(name)' is not a method; call it as \(name)(x)", at: offset)
            }
            guard shape.method.contains(arguments.count) else {
                throw arityError(name, shape.method, arguments.count, at: offset)
            }
            nodes.append(try compile(target))
        } else {
            guard !shape.global.isEmpty else {
                throw source.error("'\(name)' is a method; call it as x.\(name)(…)", at: offset)
            }
            guard shape.global.contains(arguments.count) else {
                throw arityError(name, shape.global, arguments.count, at: offset)
            }
        }
        for argument in arguments { nodes.append(try compile(argument)) }

        if let accessor = CELTimeAccessor(rawValue: name) {
            guard arguments.count == 1 else { return .timeAccessor(accessor, nodes[0], zone: .utc) }
            if case .constant(let value) = nodes[1] {
                guard case .string(let zoneName) = value else {
                    throw source.error("a time zone is a string, not \(value.typeName)", at: arguments[0].offset)
                }
                guard let zone = CELTimeZone(name: zoneName) else {
                    throw source.error(
                        "unknown time zone \(CELStrings.excerpt(zoneName)); use a tz database name such as \"Europe/Paris\" or an offset such as \"+01:00\"",
                        at: arguments[0].offset)
                }
                return .timeAccessor(accessor, nodes[0], zone: .constant(zone))
            }
            return .timeAccessor(accessor, nodes[0], zone: .dynamic(nodes[1]))
        }

        let builtin = Builtin(rawValue: name)!
        switch builtin {
        case .matches:
            if case .constant(.string(let pattern)) = nodes[1] {
                switch CELRegex.compile(pattern) {
                case .success(let regex): return .matches(nodes[0], regex)
                case .failure(let error): throw source.error(error.message, at: arguments.last!.offset)
                }
            }
        case .timestamp, .duration:
            // A valid literal is converted once; an invalid one stays a run-time error,
            // as CEL defines it.
            if case .constant(let value) = nodes[0], case .success(let converted) = Operations.call(builtin, [value]) {
                return .constant(converted)
            }
        default:
            break
        }
        return .call(builtin, nodes)
    }

    private mutating func compileMacro(_ name: String, target: Expr, arguments: [Expr]) throws(CELCompileError) -> Node {
        guard case .identifier(let variable) = arguments[0].kind else {
            throw source.error("the first argument of \(name)() must be a variable name", at: arguments[0].offset)
        }
        let range = try compile(target)
        scope.append(variable)
        slotCount = max(slotCount, scope.count)
        defer { scope.removeLast() }
        let slot = scope.count - 1
        let kind = Comprehension.Kind(rawValue: name)!
        switch kind {
        case .map where arguments.count == 3:
            return .comprehension(Comprehension(kind: kind, range: range, slot: slot,
                                                predicate: try compile(arguments[1]),
                                                transform: try compile(arguments[2])))
        case .map:
            return .comprehension(Comprehension(kind: kind, range: range, slot: slot, predicate: nil,
                                                transform: try compile(arguments[1])))
        default:
            return .comprehension(Comprehension(kind: kind, range: range, slot: slot,
                                                predicate: try compile(arguments[1]), transform: nil))
        }
    }

    private func arityError(_ name: String, _ arities: Set<Int>, _ count: Int, at offset: Int) -> CELCompileError {
        let expected = arities.sorted().map(String.init).joined(separator: " or ")
        return source.error("'\(name)' takes \(expected) argument\(arities == [1] ? "" : "s"), got \(count)", at: offset)
    }
}
