import Foundation

/// A value a CEL expression works on or produces.
///
/// CEL values are JSON-like: `null`, booleans, 64-bit signed and unsigned integers,
/// doubles, strings, lists and maps, plus the two time types, timestamps and
/// durations. Build them directly or from JSON (the ChatBridge target has
/// `CELValue(json:)`):
///
/// ```swift
/// let chat: CELValue = .map(CELMap([
///     "account_type": .string("LINKEDIN"),
///     "unread_count": .int(3),
/// ]))
/// ```
///
/// ## Equality
///
/// `==` on `CELValue` is *structural* Swift equality, used for hashing and tests: `.int(1)`
/// is not equal to `.double(1.0)`. CEL's own `==` operator (where `1 == 1.0` is true)
/// is what ``CELProgram`` evaluates. Strings compare by their Unicode code points with no
/// normalisation, as CEL requires: `.string("\u{E9}")` (precomposed é) is not equal to
/// `.string("e\u{301}")`, although Swift's `String ==` calls them equal.
public enum CELValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case list([CELValue])
    case map(CELMap)
    case timestamp(CELTimestamp)
    case duration(CELDuration)

    /// The CEL name of the value's type: `"null"`, `"bool"`, `"int"`, `"uint"`,
    /// `"double"`, `"string"`, `"list"`, `"map"`, `"timestamp"` or `"duration"`.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .int: "int"
        case .uint: "uint"
        case .double: "double"
        case .string: "string"
        case .list: "list"
        case .map: "map"
        case .timestamp: "timestamp"
        case .duration: "duration"
        }
    }

    public static func == (lhs: CELValue, rhs: CELValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        // NaN equals itself here so that `==` stays reflexive, as Hashable requires.
        case let (.double(a), .double(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.string(a), .string(b)): return CELStrings.equal(a, b)
        case let (.list(a), .list(b)): return a == b
        case let (.map(a), .map(b)): return a == b
        case let (.timestamp(a), .timestamp(b)): return a == b
        case let (.duration(a), .duration(b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(1); hasher.combine(b)
        case .int(let i): hasher.combine(2); hasher.combine(i)
        case .uint(let u): hasher.combine(3); hasher.combine(u)
        case .double(let d):
            hasher.combine(4)
            if d.isNaN { hasher.combine(UInt8(0xFF)) } else { hasher.combine(d) }
        case .string(let s):
            // String's hash is normalisation-aware, so byte-equal strings (our `==`)
            // always hash alike; canonically equivalent ones merely collide.
            hasher.combine(5); hasher.combine(s)
        case .list(let l): hasher.combine(6); hasher.combine(l)
        case .map(let m): hasher.combine(7); hasher.combine(m)
        case .timestamp(let t): hasher.combine(8); hasher.combine(t)
        case .duration(let d): hasher.combine(9); hasher.combine(d)
        }
    }
}

extension CELValue: CustomStringConvertible {
    /// The value written roughly as a CEL literal, for tests and debugging (strings are
    /// quoted and escaped; never feed this to a shell or markup).
    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .uint(let u): return "\(u)u"
        case .double(let d):
            // Keep it a double literal: 1.0, not 1.
            let text = CELDoubleFormat.string(d)
            return text.contains(where: { ".eIN".contains($0) }) ? text : text + ".0"
        case .string(let s): return CELStrings.quoted(s)
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .map(let map):
            return "{" + map.entries.map { "\($0.key.description): \($0.value.description)" }.joined(separator: ", ") + "}"
        case .timestamp(let t): return "timestamp(\"\(t.rfc3339)\")"
        case .duration(let d): return "duration(\"\(d)\")"
        }
    }
}

extension CELValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: CELValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, CELValue)...) {
        self = .map(CELMap(elements.map { (CELValue.string($0.0), $0.1) }))
    }
}

/// A CEL map: keys are `CELValue`s (strings in practice; ints, uints and bools are also
/// valid CEL keys) and the entries keep the order in which they were given.
///
/// ```swift
/// let fromPairs = CELMap([(.string("id"), .string("c1")), (.string("unread_count"), .int(3))])
/// let fromDictionary = CELMap(["id": .string("c1")])   // keys sorted, for determinism
/// fromPairs["unread_count"]                              // .int(3)
/// ```
///
/// Small maps (chat objects have a few dozen fields) are searched by a scan over the
/// keys' UTF-8 bytes, which beats hashing; large ones also keep a hash index.
/// Equality ignores entry order, as CEL's does.
public struct CELMap: Sendable, Hashable, Sequence {
    /// One key and its value.
    public struct Entry: Sendable, Hashable {
        public let key: CELValue
        public var value: CELValue
        public init(key: CELValue, value: CELValue) {
            self.key = key
            self.value = value
        }
    }

    /// The entries in their order.
    public private(set) var entries: [Entry]
    /// Position of each key in `entries`; only kept for maps larger than `scanLimit`.
    private var index: [CELValue: Int]
    private static let scanLimit = 32

    /// An empty map.
    public init() {
        entries = []
        index = [:]
    }

    /// A map of `pairs` in their order; a key given twice keeps its last value.
    public init(_ pairs: [(CELValue, CELValue)]) {
        self.init()
        entries.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    /// A map with string keys, in ascending key order (a dictionary has no order of its own).
    public init(_ dictionary: [String: CELValue]) {
        self.init(dictionary.sorted { $0.key < $1.key }.map { (CELValue.string($0.key), $0.value) })
    }

    /// Builds a map from entries whose keys are known to be distinct (no checks).
    init(distinctEntries: [Entry]) {
        entries = distinctEntries
        index = [:]
        if entries.count > Self.scanLimit { rebuildIndex() }
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public var keys: [CELValue] { entries.map(\.key) }

    public func makeIterator() -> IndexingIterator<[Entry]> { entries.makeIterator() }

    /// The value for exactly this key (structural equality: `.int(1)` does not find a
    /// `.double(1)` key); writing replaces in place or appends, writing `nil` removes.
    public subscript(key: CELValue) -> CELValue? {
        get { position(of: key).map { entries[$0].value } }
        set {
            if let position = position(of: key) {
                if let newValue {
                    entries[position].value = newValue
                } else {
                    entries.remove(at: position)
                    if !index.isEmpty || entries.count > Self.scanLimit { rebuildIndex() }
                }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
                if !index.isEmpty {
                    index[key] = entries.count - 1
                } else if entries.count > Self.scanLimit {
                    rebuildIndex()
                }
            }
        }
    }

    /// The value for a string key.
    public subscript(key: String) -> CELValue? {
        if !index.isEmpty { return index[.string(key)].map { entries[$0].value } }
        for entry in entries {
            if case .string(let candidate) = entry.key, CELStrings.equal(candidate, key) { return entry.value }
        }
        return nil
    }

    /// Looks a key up with CEL's numeric key semantics: `1`, `1u` and `1.0` all find an
    /// int or uint key of value 1.
    func lookup(_ key: CELValue) -> CELValue? {
        switch key {
        case .string(let s): return self[s]
        case .int(let i):
            if let value = self[key] { return value }
            return i >= 0 ? self[CELValue.uint(UInt64(i))] : nil
        case .uint(let u):
            if let value = self[key] { return value }
            return u <= UInt64(Int64.max) ? self[CELValue.int(Int64(u))] : nil
        case .double(let d):
            guard d.isFinite, d == d.rounded(.towardZero) else { return nil }
            if let i = Int64(exactly: d), let value = lookup(.int(i)) { return value }
            if let u = UInt64(exactly: d) { return self[CELValue.uint(u)] }
            return nil
        default:
            return self[key]
        }
    }

    private func position(of key: CELValue) -> Int? {
        if !index.isEmpty { return index[key] }
        return entries.firstIndex { $0.key == key }
    }

    private mutating func rebuildIndex() {
        index = [:]
        guard entries.count > Self.scanLimit else { return }
        index.reserveCapacity(entries.count)
        for (position, entry) in entries.enumerated() { index[entry.key] = position }
    }

    public static func == (lhs: CELMap, rhs: CELMap) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for entry in lhs.entries {
            guard let other = rhs[entry.key], other == entry.value else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, like `==`.
        var combined = 0
        for entry in entries {
            var entryHasher = Hasher()
            entryHasher.combine(entry.key)
            entryHasher.combine(entry.value)
            combined ^= entryHasher.finalize()
        }
        hasher.combine(count)
        hasher.combine(combined)
    }
}

extension CELMap: ExpressibleByDictionaryLiteral {
    /// `["id": .string("c1")]` keeps the literal's order.
    public init(dictionaryLiteral elements: (String, CELValue)...) {
        self.init(elements.map { (CELValue.string($0.0), $0.1) })
    }
}
