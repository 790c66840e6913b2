/// What is known, before evaluation, of the type of a value: the static type the
/// checker gives a variable or an expression.
///
/// `dyn` means unknown: anything may come at evaluation. A declaration says what it
/// knows and leaves the rest `dyn`, so checking never refuses an expression that could
/// work; it only refuses what is sure to fail, such as a condition of type `int`.
///
/// ```swift
/// let chat = CELType.object(["name": .string, "unread_count": .int])
/// let declarations = CELDeclarations(variables: ["chat"], types: ["chat": chat])
/// try CELProgram.compile("chat.unread_count", declarations: declarations).type   // .int
/// try CELProgram.compile("chat.labels", declarations: declarations).type         // .dyn
/// ```
public indirect enum CELType: Sendable, Hashable, CustomStringConvertible {
    case dyn, null, bool, int, uint, double, string, timestamp, duration
    /// A list whose elements are of one type (`dyn` when mixed or unknown).
    case list(CELType)
    /// A map whose values are of one type (`dyn` when mixed or unknown).
    case map(CELType)
    /// A map with string keys some of whose fields are known (a JSON object of a known
    /// shape); a field not listed is `dyn`. A listed field may still be absent or null.
    case object([String: CELType])

    /// The type's name as CEL's `type()` and error messages write it: `int`, `list`, `map`.
    public var description: String {
        switch self {
        case .dyn: "dyn"
        case .null: "null"
        case .bool: "bool"
        case .int: "int"
        case .uint: "uint"
        case .double: "double"
        case .string: "string"
        case .timestamp: "timestamp"
        case .duration: "duration"
        case .list: "list"
        case .map, .object: "map"
        }
    }

    /// Whether a value of this static type may turn out to be a value of `other`:
    /// always when either is `dyn`, else when they are the same kind of value.
    public func mayBe(_ other: CELType) -> Bool {
        switch (self, other) {
        case (.dyn, _), (_, .dyn): true
        case let (.list(a), .list(b)): a.mayBe(b)
        case let (.map(a), .map(b)): a.mayBe(b)
        case (.map, .object), (.object, .map), (.object, .object): true
        default: self == other
        }
    }

    /// The type of a constant.
    init(of value: CELValue) {
        switch value {
        case .null: self = .null
        case .bool: self = .bool
        case .int: self = .int
        case .uint: self = .uint
        case .double: self = .double
        case .string: self = .string
        case .timestamp: self = .timestamp
        case .duration: self = .duration
        case .list(let items): self = .list(CELType.common(items.map(CELType.init(of:))))
        case .map(let map): self = .map(CELType.common(map.map { CELType(of: $0.value) }))
        }
    }

    /// The one type all of `types` have, else `dyn`.
    static func common(_ types: [CELType]) -> CELType {
        guard let first = types.first, types.allSatisfy({ $0 == first }) else { return .dyn }
        return first
    }
}

extension Node {
    /// The static type of this node, given the declared `globals` and the types of the
    /// macro variables in scope (`locals`, by slot). Anything not sure is `dyn`.
    func staticType(globals: [String: CELType], locals: [Int: CELType] = [:]) -> CELType {
        func type(_ node: Node) -> CELType { node.staticType(globals: globals, locals: locals) }
        switch self {
        case .constant(let value):
            return CELType(of: value)
        case .global(let name):
            return globals[name] ?? .dyn
        case .local(let slot):
            return locals[slot] ?? .dyn
        case .select(let operand, let field):
            switch type(operand) {
            case .object(let fields): return fields[field] ?? .dyn
            case .map(let value): return value
            default: return .dyn
            }
        case .index(let operand, let index):
            switch (type(operand), index) {
            case (.list(let element), _): return element
            case (.map(let value), _): return value
            case (.object(let fields), .constant(.string(let key))): return fields[key] ?? .dyn
            default: return .dyn
            }
        case .has, .not, .and, .or, .matches:
            return .bool
        case .negate(let operand):
            let operandType = type(operand)
            return operandType == .int || operandType == .double ? operandType : .dyn
        case .conditional(_, let then, let otherwise):
            return CELType.common([type(then), type(otherwise)])
        case .binary(let op, let left, let right):
            return Self.binaryType(op, type(left), type(right))
        case .list(let elements):
            return .list(CELType.common(elements.map(type)))
        case .map(_, let values):
            return .map(CELType.common(values.map(type)))
        case .call(let builtin, _):
            switch builtin {
            case .size, .int: return .int
            case .contains, .startsWith, .endsWith, .matches, .bool: return .bool
            case .lowerAscii, .upperAscii, .string: return .string
            case .uint: return .uint
            case .double: return .double
            case .timestamp: return .timestamp
            case .duration: return .duration
            case .dyn: return .dyn
            }
        case .timeAccessor:
            return .int
        case .comprehension(let comprehension):
            let element: CELType = switch type(comprehension.range) {
            case .list(let element): element
            case .object: .string
            default: .dyn
            }
            var inner = locals
            inner[comprehension.slot] = element
            switch comprehension.kind {
            case .all, .exists, .existsOne:
                return .bool
            case .filter:
                return .list(element)
            case .map:
                return .list(comprehension.transform.map { $0.staticType(globals: globals, locals: inner) } ?? .dyn)
            }
        }
    }

    /// The result type of `left op right`; `dyn` when not sure (including when the
    /// operands have no such operator, which evaluation reports).
    private static func binaryType(_ op: BinaryOperator, _ left: CELType, _ right: CELType) -> CELType {
        switch op {
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .in:
            return .bool
        case .add:
            switch (left, right) {
            case (.int, .int), (.uint, .uint), (.double, .double), (.string, .string), (.duration, .duration):
                return left
            case (.timestamp, .duration), (.duration, .timestamp):
                return .timestamp
            case let (.list(a), .list(b)):
                return .list(a == b ? a : .dyn)
            default:
                return .dyn
            }
        case .subtract:
            switch (left, right) {
            case (.int, .int), (.uint, .uint), (.double, .double), (.duration, .duration):
                return left
            case (.timestamp, .timestamp):
                return .duration
            case (.timestamp, .duration):
                return .timestamp
            default:
                return .dyn
            }
        case .multiply, .divide, .remainder:
            switch (left, right) {
            case (.int, .int), (.uint, .uint): return left
            case (.double, .double) where op != .remainder: return left
            default: return .dyn
            }
        }
    }
}
