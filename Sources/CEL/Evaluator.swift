/// Walks a ``Node`` tree for one evaluation. Recursion depth is bounded by the parser's
/// height limit.
struct Evaluator {
    let variables: [String: CELValue]
    /// The current values of macro variables, by slot.
    private var locals: [CELValue]

    init(variables: [String: CELValue], slotCount: Int) {
        self.variables = variables
        locals = slotCount == 0 ? [] : Array(repeating: .null, count: slotCount)
    }

    mutating func evaluate(_ node: Node) throws(CELEvaluationError) -> CELValue {
        switch node {
        case .constant(let value):
            return value
        case .global(let name):
            guard let value = variables[name] else {
                throw CELEvaluationError(message: "no value given for variable '\(name)'")
            }
            return value
        case .local(let slot):
            return locals[slot]
        case .select(let operand, let field):
            return try Operations.select(try evaluate(operand), field)
        case .has(let operand, let field):
            return try Operations.has(try evaluate(operand), field)
        case .index(let operand, let index):
            let container = try evaluate(operand)
            return try Operations.index(container, try evaluate(index))
        case .not(let operand):
            let value = try evaluate(operand)
            guard case .bool(let b) = value else { throw Operations.noOverload("!", value) }
            return .bool(!b)
        case .negate(let operand):
            return try Operations.negate(try evaluate(operand))
        case .and(let left, let right):
            return try logical(left, right, deciding: false, name: "&&")
        case .or(let left, let right):
            return try logical(left, right, deciding: true, name: "||")
        case .conditional(let condition, let then, let otherwise):
            let value = try evaluate(condition)
            guard case .bool(let b) = value else { throw Operations.noOverload("_?_:_", value) }
            return try evaluate(b ? then : otherwise)
        case .binary(let op, let left, let right):
            let a = try evaluate(left)
            return try Operations.binary(op, a, try evaluate(right))
        case .list(let elements):
            var values: [CELValue] = []
            values.reserveCapacity(elements.count)
            for element in elements { values.append(try evaluate(element)) }
            return .list(values)
        case .map(let keys, let values):
            var entries: [CELMap.Entry] = []
            entries.reserveCapacity(keys.count)
            var seen = CELMap()
            for (keyNode, valueNode) in zip(keys, values) {
                let key = try evaluate(keyNode)
                switch key {
                case .string, .int, .uint, .bool: break
                default: throw CELEvaluationError(message: "a map key cannot be a \(key.typeName)")
                }
                guard seen.lookup(key) == nil else {
                    throw CELEvaluationError(message: "repeated map key \(Operations.describeKey(key))")
                }
                seen[key] = .null
                entries.append(CELMap.Entry(key: key, value: try evaluate(valueNode)))
            }
            return .map(CELMap(distinctEntries: entries))
        case .call(let builtin, let argumentNodes):
            var arguments: [CELValue] = []
            arguments.reserveCapacity(argumentNodes.count)
            for argument in argumentNodes { arguments.append(try evaluate(argument)) }
            return try Operations.call(builtin, arguments).get()
        case .matches(let subject, let regex):
            let value = try evaluate(subject)
            guard case .string(let text) = value else { throw Operations.noOverload("matches", value, .string("")) }
            return .bool(try regex.matches(text))
        case .timeAccessor(let accessor, let operand, let zoneArgument):
            let value = try evaluate(operand)
            let zone: CELTimeZone
            switch zoneArgument {
            case .utc: zone = .utc
            case .constant(let constant): zone = constant
            case .dynamic(let node):
                let zoneValue = try evaluate(node)
                guard case .timestamp = value else { throw Operations.noOverload(accessor.rawValue, value, zoneValue) }
                guard case .string(let name) = zoneValue else { throw Operations.noOverload(accessor.rawValue, value, zoneValue) }
                guard let resolved = CELTimeZone(name: name) else {
                    throw CELEvaluationError(message: "unknown time zone \(CELStrings.excerpt(name))")
                }
                zone = resolved
            }
            switch value {
            case .timestamp(let timestamp):
                // Values made outside CEL may be out of range; keep the calendar math in it.
                guard timestamp.isInRange else {
                    throw CELEvaluationError(message: "timestamp out of range (years 0001 to 9999)")
                }
                return .int(accessor.value(of: timestamp, in: zone))
            case .duration(let duration):
                guard duration.isInRange else { throw CELEvaluationError(message: "duration out of range") }
                if case .utc = zoneArgument, let result = accessor.value(of: duration) { return .int(result) }
                throw Operations.noOverload(accessor.rawValue, value)
            default:
                throw Operations.noOverload(accessor.rawValue, value)
            }
        case .comprehension(let comprehension):
            return try evaluate(comprehension)
        }
    }

    /// `&&` (`deciding` false) and `||` (`deciding` true) with CEL's commutative error
    /// rules: a side equal to `deciding` settles the result even when the other side is
    /// an error or not a bool; otherwise the first error is the result.
    private mutating func logical(_ left: Node, _ right: Node, deciding: Bool, name: String)
        throws(CELEvaluationError) -> CELValue
    {
        var leftValue: CELValue?
        var leftError: CELEvaluationError?
        do { leftValue = try evaluate(left) } catch { leftError = error }
        if case .bool(let b)? = leftValue, b == deciding { return .bool(deciding) }

        var rightValue: CELValue?
        var rightError: CELEvaluationError?
        do { rightValue = try evaluate(right) } catch { rightError = error }
        if case .bool(let b)? = rightValue, b == deciding { return .bool(deciding) }

        if case .bool? = leftValue, case .bool? = rightValue { return .bool(!deciding) }
        if let leftError { throw leftError }
        if let rightError { throw rightError }
        throw Operations.noOverload(name, leftValue ?? .null, rightValue ?? .null)
    }

    private mutating func evaluate(_ comprehension: Comprehension) throws(CELEvaluationError) -> CELValue {
        let rangeValue = try evaluate(comprehension.range)
        let items: [CELValue]
        switch rangeValue {
        case .list(let elements): items = elements
        case .map(let map): items = map.keys
        default:
            throw CELEvaluationError(
                message: "\(comprehension.kind.rawValue)() needs a list or a map, not \(rangeValue.typeName)")
        }
        let slot = comprehension.slot

        func condition(_ evaluator: inout Evaluator) throws(CELEvaluationError) -> Bool {
            let value = try evaluator.evaluate(comprehension.predicate!)
            guard case .bool(let b) = value else {
                throw CELEvaluationError(
                    message: "the condition of \(comprehension.kind.rawValue)() gave a \(value.typeName), not a bool")
            }
            return b
        }

        switch comprehension.kind {
        case .all, .exists:
            // all: any false decides; exists: any true decides. Errors are absorbed when
            // another item decides, as for && and ||.
            let deciding = comprehension.kind == .exists
            var firstError: CELEvaluationError?
            for item in items {
                locals[slot] = item
                do {
                    if try condition(&self) == deciding { return .bool(deciding) }
                } catch {
                    if firstError == nil { firstError = error }
                }
            }
            if let firstError { throw firstError }
            return .bool(!deciding)
        case .existsOne:
            var count = 0
            for item in items {
                locals[slot] = item
                if try condition(&self) { count += 1 }
            }
            return .bool(count == 1)
        case .filter:
            var kept: [CELValue] = []
            for item in items {
                locals[slot] = item
                if try condition(&self) { kept.append(item) }
            }
            return .list(kept)
        case .map:
            var results: [CELValue] = []
            results.reserveCapacity(items.count)
            for item in items {
                locals[slot] = item
                if comprehension.predicate != nil, try !condition(&self) { continue }
                results.append(try evaluate(comprehension.transform!))
            }
            return .list(results)
        }
    }
}
