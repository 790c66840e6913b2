import CEL
import Testing

/// Compiles `source` with `variables` declared and evaluates it with them bound.
func evaluate(_ source: String, _ variables: [String: CELValue] = [:]) throws -> Result<CELValue, CELEvaluationError> {
    let program = try CELProgram.compile(source, declarations: CELDeclarations(variables: Set(variables.keys)))
    return program.evaluate(CELActivation(variables))
}

/// The value of `source`; fails the calling test (by throwing) when evaluation errs.
func value(_ source: String, _ variables: [String: CELValue] = [:]) throws -> CELValue {
    try evaluate(source, variables).get()
}

/// The evaluation error of `source`, or `nil` when it produced a value.
func evaluationError(_ source: String, _ variables: [String: CELValue] = [:]) throws -> CELEvaluationError? {
    if case .failure(let error) = try evaluate(source, variables) { return error }
    return nil
}

/// The compile error of `source` with `declared` variables, or `nil` when it compiles.
func compileError(_ source: String, declared: Set<String> = []) -> CELCompileError? {
    do {
        _ = try CELProgram.compile(source, declarations: CELDeclarations(variables: declared))
        return nil
    } catch {
        return error
    }
}
