import CEL
import Foundation
import Testing

/// Holds a thread's result: written once by the thread, read only after it signalled.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// Runs `work` on a thread with a deliberately small stack and waits at most `timeout`
/// seconds for it. Release builds get 512 KiB, the stack of a Swift concurrency thread on
/// Darwin; measured, the deepest accepted expressions need under 256 KiB there. Debug
/// frames are about eight times larger (up to 2 MiB measured), so debug builds get 4 MiB —
/// still far too little for the unbounded recursion a 1000-level expression would cause.
private func onBoundedStack<T: Sendable>(timeout: TimeInterval = 30, _ work: @escaping @Sendable () -> T) -> T? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        box.value = work()
        done.signal()
    }
    #if DEBUG
    thread.stackSize = 4 * 1024 * 1024
    #else
    thread.stackSize = 512 * 1024
    #endif
    thread.start()
    guard done.wait(timeout: .now() + timeout) == .success else { return nil }
    return box.value
}

@Suite("CEL nesting limits")
struct NestingTests {
    @Test func aThousandParenthesesIsACompileErrorNotAStackOverflow() throws {
        let source = String(repeating: "(", count: 1000) + "1" + String(repeating: ")", count: 1000)
        let message = onBoundedStack { compileError(source)?.message }
        #expect(message == "expression is nested too deeply (more than 100 levels)")
    }

    @Test func longOperatorChainsAreBoundedToo() throws {
        let chain = Array(repeating: "true", count: 10_000).joined(separator: " || ")
        let message = onBoundedStack { compileError(chain)?.message }
        #expect(message == "expression is nested too deeply (more than 200 levels)")
        let unary = String(repeating: "!", count: 5000) + "true"
        #expect(onBoundedStack { compileError(unary)?.message } == "expression is nested too deeply (more than 200 levels)")
        let lists = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect(onBoundedStack { compileError(lists) != nil } == true)
        let calls = String(repeating: "size(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(onBoundedStack { compileError(calls) != nil } == true)
    }

    @Test func expressionsJustInsideTheLimitsEvaluateOnABoundedStack() throws {
        let sources = [
            // 99 nested parentheses around a conditional chain.
            String(repeating: "(", count: 99) + "1" + String(repeating: ")", count: 99),
            // Height 200 trees: a long || chain, a long conditional chain, nested negations.
            Array(repeating: "x == 0", count: 100).joined(separator: " || "),
            Array(repeating: "x > 0 ? 1 :", count: 95).joined(separator: " ") + " 0",
            String(repeating: "-", count: 198) + "x",
            String(repeating: "[", count: 98) + "x" + String(repeating: "]", count: 98),
            String(repeating: "[x].map(y, ", count: 45) + "y" + String(repeating: ")", count: 45),
        ]
        for source in sources {
            let outcome = onBoundedStack { () -> String in
                do {
                    let program = try CELProgram.compile(source, declarations: CELDeclarations(variables: ["x"]))
                    switch program.evaluate(CELActivation(["x": 1])) {
                    case .success: return "value"
                    case .failure(let error): return "error: \(error)"
                    }
                } catch {
                    return "compile error: \(error)"
                }
            }
            #expect(outcome == "value", "\(source.prefix(40))…")
        }
    }
}
