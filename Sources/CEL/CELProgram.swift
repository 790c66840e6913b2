/// The variables an expression may use, and what is known of their types. Functions
/// are CEL's built-in set.
///
/// ```swift
/// let declarations = CELDeclarations(
///     variables: ["chat", "kinds", "type", "now"],
///     types: ["kinds": .list(.string), "now": .timestamp])   // chat and type are dyn
/// ```
///
/// A declared variable named like a CEL built-in (`type`, `int`) shadows it: our rules
/// declare `type`, the event type.
public struct CELDeclarations: Sendable {
    public var variables: Set<String>
    /// The static type of each variable that has a known one; the others are `dyn`.
    public var types: [String: CELType]

    public init(variables: Set<String>, types: [String: CELType] = [:]) {
        self.variables = variables
        self.types = types
    }
}

/// The values of the declared variables for one evaluation.
///
/// ```swift
/// let activation = CELActivation(["chat": chatValue, "type": .string("chat.updated")])
/// ```
public struct CELActivation: Sendable {
    public var variables: [String: CELValue]

    public init(_ variables: [String: CELValue]) { self.variables = variables }
}

/// Why an expression does not compile, and where.
///
/// `line` and `column` are 1-based and count code points within the expression text;
/// `offset` is the 0-based code-point offset from its start. A caller that embeds the
/// expression in a file (a rule's `when:`) adds its own position:
///
/// ```swift
/// do {
///     _ = try CELProgram.compile("chat.name ==\n  nme", declarations: declarations)
/// } catch {
///     print(error)   // 2:3: undeclared reference to 'nme'
/// }
/// ```
public struct CELCompileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int
    public var offset: Int

    public init(message: String, line: Int, column: Int, offset: Int) {
        self.message = message
        self.line = line
        self.column = column
        self.offset = offset
    }

    /// `LINE:COLUMN: message`.
    public var description: String { "\(line):\(column): \(message)" }
}

/// Why an evaluation produced no value: a missing map key, a wrong type, no matching
/// overload, a division by zero, an overflow, a value out of range.
///
/// Messages name types and the expression's own field names; text that comes from the
/// data (a chat's name) appears only as a short escaped excerpt, if at all.
public struct CELEvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(message: String) { self.message = message }

    public var description: String { message }
}

/// A compiled CEL expression: parse and check once, evaluate many times.
///
/// ```swift
/// let program = try CELProgram.compile(
///     #"chat.account_type == "LINKEDIN" && chat.unread_count > 0"#,
///     declarations: CELDeclarations(variables: ["chat"]))
/// switch program.evaluate(CELActivation(["chat": chat])) {
/// case .success(.bool(true)): print("match")
/// case .success(let other): print("not a match: \(other)")
/// case .failure(let error): print("condition failed: \(error)")
/// }
/// ```
///
/// `compile` rejects syntax errors, undeclared variables (names neither declared nor
/// bound by a macro such as `all(x, …)`), unknown functions, calls with the wrong number
/// of arguments, malformed macros, invalid literal regular expressions and unknown
/// literal time zones, each with its position. Evaluation never traps: every failure is a
/// ``CELEvaluationError``, and `&&`/`||` absorb an error when the other side decides.
public struct CELProgram: Sendable {
    /// The expression text as given.
    public let source: String
    /// The static type of the result, from the declared types (``CELDeclarations/types``):
    /// `.int` for `chat.unread_count + 1` when `chat.unread_count` is declared an int,
    /// `.bool` for any comparison, `.dyn` when it depends on data.
    public let type: CELType
    /// The declared variables the expression reads: an activation needs only these (a
    /// caller whose variables are costly to make can skip the others).
    ///
    /// ```swift
    /// try CELProgram.compile("chat.unread_count > 0 && 'x' in kinds", declarations: declarations).globals
    /// // ["chat", "kinds"]
    /// ```
    public let globals: Set<String>
    let root: Node
    let localSlots: Int

    public static func compile(_ source: String, declarations: CELDeclarations) throws(CELCompileError) -> CELProgram {
        let text = SourceText(source)
        let expr = try Parser.parse(text)
        var compiler = Compiler(source: text, declarations: declarations)
        let root = try compiler.compile(expr)
        return CELProgram(source: source, type: root.staticType(globals: declarations.types), globals: compiler.globals,
                          root: root, localSlots: compiler.slotCount)
    }

    /// Compiles `source` and checks that its result may be of type `expected`: a rule's
    /// condition must be able to be a `bool`. An expression whose static type is known
    /// and different (`chat.unread_count` declared an int) is refused, at the start of the
    /// expression; a `dyn` one (an undeclared field, `dyn(x)`) is accepted and checked
    /// when evaluated.
    ///
    /// ```swift
    /// try CELProgram.compile("chat.unread_count", declarations: declarations, expecting: .bool)
    /// // 1:1: the expression is of type int, not bool
    /// ```
    public static func compile(_ source: String, declarations: CELDeclarations, expecting expected: CELType)
        throws(CELCompileError) -> CELProgram
    {
        let program = try compile(source, declarations: declarations)
        guard program.type.mayBe(expected) else {
            let text = SourceText(source)
            throw text.error("the expression is of type \(program.type), not \(expected)", at: text.firstTokenOffset)
        }
        return program
    }

    /// Evaluates the expression with `activation`'s variables. A declared variable missing
    /// from the activation is an evaluation error.
    public func evaluate(_ activation: CELActivation) -> Result<CELValue, CELEvaluationError> {
        var evaluator = Evaluator(variables: activation.variables, slotCount: localSlots)
        do {
            return .success(try evaluator.evaluate(root))
        } catch {
            return .failure(error)
        }
    }
}
