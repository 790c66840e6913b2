/// CEL's operators and built-in functions on values, as cel-cpp defines them with the type
/// checker off. Every failure is a ``CELEvaluationError``; nothing traps.
enum Operations {
    // MARK: Errors

    static func noOverload(_ function: String, _ arguments: CELValue...) -> CELEvaluationError {
        CELEvaluationError(message: "no matching overload for '\(function)' applied to (\(arguments.map(\.typeName).joined(separator: ", ")))")
    }

    static func describeKey(_ key: CELValue) -> String {
        if case .string(let s) = key { return CELStrings.excerpt(s) }
        return key.description
    }

    // MARK: Selection and indexing

    static func select(_ operand: CELValue, _ field: String) throws(CELEvaluationError) -> CELValue {
        guard case .map(let map) = operand else {
            throw CELEvaluationError(message: "type '\(operand.typeName)' does not support field selection (.\(field))")
        }
        guard let value = map[field] else { throw CELEvaluationError(message: "no such key: '\(field)'") }
        return value
    }

    static func has(_ operand: CELValue, _ field: String) throws(CELEvaluationError) -> CELValue {
        guard case .map(let map) = operand else {
            throw CELEvaluationError(message: "has() needs a map, not \(operand.typeName) (.\(field))")
        }
        return .bool(map[field] != nil)
    }

    static func index(_ container: CELValue, _ key: CELValue) throws(CELEvaluationError) -> CELValue {
        switch container {
        case .list(let elements):
            let position: Int64
            switch key {
            case .int(let i): position = i
            case .uint(let u):
                guard let i = Int64(exactly: u) else { throw CELEvaluationError(message: "index out of range: \(u)") }
                position = i
            case .double(let d):
                guard let i = Int64(exactly: d) else {
                    throw CELEvaluationError(message: "invalid list index: \(CELDoubleFormat.string(d)) is not a whole number")
                }
                position = i
            default:
                throw noOverload("_[_]", container, key)
            }
            guard position >= 0, position < Int64(elements.count) else {
                throw CELEvaluationError(message: "index out of range: \(position) (list size \(elements.count))")
            }
            return elements[Int(position)]
        case .map(let map):
            switch key {
            case .string, .int, .uint, .bool, .double: break
            default: throw noOverload("_[_]", container, key)
            }
            guard let value = map.lookup(key) else {
                throw CELEvaluationError(message: "no such key: \(describeKey(key))")
            }
            return value
        default:
            throw noOverload("_[_]", container, key)
        }
    }

    // MARK: Operators

    static func negate(_ value: CELValue) throws(CELEvaluationError) -> CELValue {
        switch value {
        case .int(let i):
            guard i != .min else { throw overflow("-") }
            return .int(-i)
        case .double(let d):
            return .double(-d)
        default:
            throw noOverload("-", value)
        }
    }

    static func binary(_ op: BinaryOperator, _ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELValue {
        switch op {
        case .equal: return .bool(equals(a, b))
        case .notEqual: return .bool(!equals(a, b))
        case .less, .lessEqual, .greater, .greaterEqual:
            guard let order = compare(a, b) else { throw noOverload(op.rawValue, a, b) }
            switch (op, order) {
            case (_, .unordered): return .bool(false)
            case (.less, let o): return .bool(o == .less)
            case (.lessEqual, let o): return .bool(o != .greater)
            case (.greater, let o): return .bool(o == .greater)
            default: return .bool(order != .less)
            }
        case .in: return .bool(try contains(b, a))
        case .add: return try add(a, b)
        case .subtract: return try subtract(a, b)
        case .multiply: return try multiply(a, b)
        case .divide: return try divide(a, b)
        case .remainder: return try remainder(a, b)
        }
    }

    private static func overflow(_ op: String) -> CELEvaluationError {
        CELEvaluationError(message: "integer overflow in '\(op)'")
    }

    static func add(_ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (result, overflowed) = x.addingReportingOverflow(y)
            if overflowed { throw overflow("+") }
            return .int(result)
        case let (.uint(x), .uint(y)):
            let (result, overflowed) = x.addingReportingOverflow(y)
            if overflowed { throw overflow("+") }
            return .uint(result)
        case let (.double(x), .double(y)):
            return .double(x + y)
        case let (.string(x), .string(y)):
            return .string(x + y)
        case let (.list(x), .list(y)):
            return .list(x + y)
        case let (.timestamp(t), .duration(d)), let (.duration(d), .timestamp(t)):
            guard let result = CELTimeArithmetic.add(t, d) else { throw timestampRange() }
            return .timestamp(result)
        case let (.duration(x), .duration(y)):
            guard let result = CELTimeArithmetic.add(x, y) else { throw durationRange() }
            return .duration(result)
        default:
            throw noOverload("+", a, b)
        }
    }

    static func subtract(_ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (result, overflowed) = x.subtractingReportingOverflow(y)
            if overflowed { throw overflow("-") }
            return .int(result)
        case let (.uint(x), .uint(y)):
            let (result, overflowed) = x.subtractingReportingOverflow(y)
            if overflowed { throw overflow("-") }
            return .uint(result)
        case let (.double(x), .double(y)):
            return .double(x - y)
        case let (.timestamp(t), .duration(d)):
            guard let result = CELTimeArithmetic.subtract(t, d) else { throw timestampRange() }
            return .timestamp(result)
        case let (.timestamp(x), .timestamp(y)):
            guard let result = CELTimeArithmetic.difference(x, y) else { throw durationRange() }
            return .duration(result)
        case let (.duration(x), .duration(y)):
            guard let result = CELTimeArithmetic.subtract(x, y) else { throw durationRange() }
            return .duration(result)
        default:
            throw noOverload("-", a, b)
        }
    }

    static func multiply(_ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (result, overflowed) = x.multipliedReportingOverflow(by: y)
            if overflowed { throw overflow("*") }
            return .int(result)
        case let (.uint(x), .uint(y)):
            let (result, overflowed) = x.multipliedReportingOverflow(by: y)
            if overflowed { throw overflow("*") }
            return .uint(result)
        case let (.double(x), .double(y)):
            return .double(x * y)
        default:
            throw noOverload("*", a, b)
        }
    }

    static func divide(_ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            if y == 0 { throw CELEvaluationError(message: "division by zero") }
            if x == .min, y == -1 { throw overflow("/") }
            return .int(x / y)
        case let (.uint(x), .uint(y)):
            if y == 0 { throw CELEvaluationError(message: "division by zero") }
            return .uint(x / y)
        case let (.double(x), .double(y)):
            return .double(x / y)
        default:
            throw noOverload("/", a, b)
        }
    }

    static func remainder(_ a: CELValue, _ b: CELValue) throws(CELEvaluationError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            if y == 0 { throw CELEvaluationError(message: "modulus by zero") }
            if x == .min, y == -1 { throw overflow("%") }
            return .int(x % y)
        case let (.uint(x), .uint(y)):
            if y == 0 { throw CELEvaluationError(message: "modulus by zero") }
            return .uint(x % y)
        default:
            throw noOverload("%", a, b)
        }
    }

    private static func timestampRange() -> CELEvaluationError {
        CELEvaluationError(message: "timestamp out of range (years 0001 to 9999)")
    }

    private static func durationRange() -> CELEvaluationError {
        CELEvaluationError(message: "duration out of range")
    }

    // MARK: Equality and ordering

    /// CEL's `==`: numbers compare across int, uint and double; values of different
    /// types are unequal (never an error); lists and maps compare element-wise.
    static func equals(_ a: CELValue, _ b: CELValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.string(x), .string(y)): return CELStrings.equal(x, y)
        case let (.int(x), .int(y)): return x == y
        case let (.uint(x), .uint(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case (.int, .uint), (.uint, .int), (.int, .double), (.double, .int), (.uint, .double), (.double, .uint):
            return compare(a, b) == .equal
        case let (.list(x), .list(y)):
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) where !equals(p, q) { return false }
            return true
        case let (.map(x), .map(y)):
            guard x.count == y.count else { return false }
            for entry in x.entries {
                guard let other = y.lookup(entry.key), equals(entry.value, other) else { return false }
            }
            return true
        case let (.timestamp(x), .timestamp(y)): return x == y
        case let (.duration(x), .duration(y)): return x == y
        default: return false
        }
    }

    enum Order { case less, equal, greater, unordered }

    private static func order<T: Comparable>(_ x: T, _ y: T) -> Order {
        x < y ? .less : (x == y ? .equal : .greater)
    }

    private static func reversed(_ o: Order) -> Order {
        switch o {
        case .less: .greater
        case .greater: .less
        default: o
        }
    }

    /// The ordering of two values, `nil` when CEL defines none (null, lists, maps, mixed
    /// types); `.unordered` when a NaN is involved.
    static func compare(_ a: CELValue, _ b: CELValue) -> Order? {
        switch (a, b) {
        case let (.int(x), .int(y)): return order(x, y)
        case let (.uint(x), .uint(y)): return order(x, y)
        case let (.double(x), .double(y)): return x.isNaN || y.isNaN ? .unordered : order(x, y)
        case let (.int(x), .double(y)): return compare(int: x, double: y)
        case let (.double(x), .int(y)): return reversed(compare(int: y, double: x))
        case let (.uint(x), .double(y)): return compare(uint: x, double: y)
        case let (.double(x), .uint(y)): return reversed(compare(uint: y, double: x))
        case let (.int(x), .uint(y)): return x < 0 ? .less : order(UInt64(x), y)
        case let (.uint(x), .int(y)): return y < 0 ? .greater : order(x, UInt64(y))
        case let (.string(x), .string(y)):
            let c = CELStrings.compare(x, y)
            return c < 0 ? .less : (c == 0 ? .equal : .greater)
        case let (.bool(x), .bool(y)): return x == y ? .equal : (x ? .greater : .less)
        case let (.timestamp(x), .timestamp(y)): return order(x, y)
        case let (.duration(x), .duration(y)): return order(x, y)
        default: return nil
        }
    }

    /// As cel-go and cel-cpp: a double beyond the int64 range is beyond every int;
    /// otherwise the int is compared as a double (so `9223372036854775807` equals
    /// `9223372036854775808.0`, as in the conformance tests).
    private static func compare(int i: Int64, double d: Double) -> Order {
        if d.isNaN { return .unordered }
        if d < -9_223_372_036_854_775_808.0 { return .greater }
        if d > 9_223_372_036_854_775_808.0 { return .less }
        return order(Double(i), d)
    }

    private static func compare(uint u: UInt64, double d: Double) -> Order {
        if d.isNaN { return .unordered }
        if d < 0 { return .greater }
        if d > 18_446_744_073_709_551_616.0 { return .less }
        return order(Double(u), d)
    }

    /// `element in collection`: list membership by CEL equality, or map key presence.
    static func contains(_ collection: CELValue, _ element: CELValue) throws(CELEvaluationError) -> Bool {
        switch collection {
        case .list(let elements):
            return elements.contains { equals($0, element) }
        case .map(let map):
            switch element {
            case .string, .int, .uint, .bool, .double: return map.lookup(element) != nil
            default: return false
            }
        default:
            throw noOverload("in", element, collection)
        }
    }

    // MARK: Functions

    static func call(_ builtin: Builtin, _ arguments: [CELValue]) -> Result<CELValue, CELEvaluationError> {
        let value = arguments[0]
        switch builtin {
        case .size:
            switch value {
            case .string(let s): return .success(.int(Int64(CELStrings.size(s))))
            case .list(let l): return .success(.int(Int64(l.count)))
            case .map(let m): return .success(.int(Int64(m.count)))
            default: return .failure(noOverload("size", value))
            }
        case .contains, .startsWith, .endsWith:
            guard case .string(let s) = value, case .string(let t) = arguments[1] else {
                return .failure(noOverload(builtin.rawValue, value, arguments[1]))
            }
            switch builtin {
            case .contains: return .success(.bool(CELStrings.contains(s, t)))
            case .startsWith: return .success(.bool(CELStrings.startsWith(s, t)))
            default: return .success(.bool(CELStrings.endsWith(s, t)))
            }
        case .matches:
            guard case .string(let s) = value, case .string(let pattern) = arguments[1] else {
                return .failure(noOverload("matches", value, arguments[1]))
            }
            return CELRegex.compile(pattern).flatMap { regex in
                Result { () throws(CELEvaluationError) in .bool(try regex.matches(s)) }
            }
        case .lowerAscii, .upperAscii:
            guard case .string(let s) = value else { return .failure(noOverload(builtin.rawValue, value)) }
            return .success(.string(builtin == .lowerAscii ? CELStrings.lowerASCII(s) : CELStrings.upperASCII(s)))
        case .dyn:
            return .success(value)
        case .int: return toInt(value)
        case .uint: return toUint(value)
        case .double: return toDouble(value)
        case .string: return toString(value)
        case .bool: return toBool(value)
        case .timestamp: return toTimestamp(value)
        case .duration: return toDuration(value)
        }
    }

    private static func conversionError(_ what: String) -> Result<CELValue, CELEvaluationError> {
        .failure(CELEvaluationError(message: what))
    }

    static func toInt(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .int: return .success(value)
        case .uint(let u):
            guard let i = Int64(exactly: u) else { return conversionError("int() out of range: uint too large") }
            return .success(.int(i))
        case .double(let d):
            // Strictly inside (-2^63, 2^63), as cel-cpp.
            guard d.isFinite, d > -9_223_372_036_854_775_808.0, d < 9_223_372_036_854_775_808.0 else {
                return conversionError("int() out of range: double outside the int64 range")
            }
            return .success(.int(Int64(d)))
        case .string(let s):
            guard let i = Int64(s) else { return conversionError("int() cannot convert the string: not an integer") }
            return .success(.int(i))
        case .bool(let b): return .success(.int(b ? 1 : 0))
        case .timestamp(let t): return .success(.int(t.seconds))
        default: return .failure(noOverload("int", value))
        }
    }

    static func toUint(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .uint: return .success(value)
        case .int(let i):
            guard i >= 0 else { return conversionError("uint() out of range: negative int") }
            return .success(.uint(UInt64(i)))
        case .double(let d):
            guard d.isFinite, d >= 0, d < 18_446_744_073_709_551_616.0 else {
                return conversionError("uint() out of range: double outside the uint64 range")
            }
            return .success(.uint(UInt64(d)))
        case .string(let s):
            guard let u = UInt64(s) else { return conversionError("uint() cannot convert the string: not an unsigned integer") }
            return .success(.uint(u))
        default: return .failure(noOverload("uint", value))
        }
    }

    static func toDouble(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .double: return .success(value)
        case .int(let i): return .success(.double(Double(i)))
        case .uint(let u): return .success(.double(Double(u)))
        case .string(let s):
            guard let d = Double(s) else { return conversionError("double() cannot convert the string: not a number") }
            return .success(.double(d))
        default: return .failure(noOverload("double", value))
        }
    }

    static func toString(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .string: return .success(value)
        case .int(let i): return .success(.string(String(i)))
        case .uint(let u): return .success(.string(String(u)))
        case .double(let d): return .success(.string(CELDoubleFormat.string(d)))
        case .bool(let b): return .success(.string(b ? "true" : "false"))
        case .timestamp(let t):
            guard t.isInRange else { return .failure(timestampRange()) }
            return .success(.string(t.rfc3339))
        case .duration(let d):
            guard d.isInRange else { return .failure(durationRange()) }
            return .success(.string(d.description))
        default: return .failure(noOverload("string", value))
        }
    }

    static func toBool(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .bool: return .success(value)
        case .string(let s):
            switch s {
            case "1", "t", "true", "TRUE", "True": return .success(.bool(true))
            case "0", "f", "false", "FALSE", "False": return .success(.bool(false))
            default: return conversionError("bool() cannot convert the string: not one of true/false/t/f/1/0")
            }
        default: return .failure(noOverload("bool", value))
        }
    }

    static func toTimestamp(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .timestamp: return .success(value)
        case .string(let s):
            guard let t = CELTimestamp(rfc3339: s) else {
                return conversionError("timestamp() cannot parse the string: expected RFC 3339, e.g. 2026-03-29T01:30:00Z")
            }
            guard t.isInRange else { return .failure(timestampRange()) }
            return .success(.timestamp(t))
        case .int(let seconds):
            let t = CELTimestamp(seconds: seconds)
            guard t.isInRange else { return .failure(timestampRange()) }
            return .success(.timestamp(t))
        default: return .failure(noOverload("timestamp", value))
        }
    }

    static func toDuration(_ value: CELValue) -> Result<CELValue, CELEvaluationError> {
        switch value {
        case .duration: return .success(value)
        case .string(let s):
            guard let d = CELDuration(s) else {
                return conversionError("duration() cannot parse the string: expected e.g. \"90s\", \"1h30m\", \"-1.5s\"")
            }
            guard d.isInRange else { return .failure(durationRange()) }
            return .success(.duration(d))
        default: return .failure(noOverload("duration", value))
        }
    }
}
