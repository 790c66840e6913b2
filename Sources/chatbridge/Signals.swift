import Dispatch
import Foundation

/// Runs `body` until it returns or the process gets SIGINT or SIGTERM; then cancels it
/// and returns normally (a stop asked for by the user is a success).
func withShutdownSignals(_ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await body()
            return true
        }
        group.addTask {
            await waitForSignal([SIGINT, SIGTERM])
            return false
        }
        defer { group.cancelAll() }
        _ = try await group.next()
    }
}

/// Suspends until one of `signals` arrives (their default action is turned off).
func waitForSignal(_ signals: [Int32]) async {
    let box = SignalSources()
    await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            box.start(signals, continuation: continuation)
        }
    } onCancel: {
        box.finish()
    }
}

/// Holds the dispatch sources of `waitForSignal` and resumes its continuation once.
private final class SignalSources: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []
    private var continuation: CheckedContinuation<Void, Never>?
    private var finished = false

    func start(_ signals: [Int32], continuation: CheckedContinuation<Void, Never>) {
        lock.lock()
        if finished {
            lock.unlock()
            continuation.resume()
            return
        }
        self.continuation = continuation
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.finish() }
            source.resume()
            sources.append(source)
        }
        lock.unlock()
    }

    func finish() {
        lock.lock()
        finished = true
        let pending = continuation
        continuation = nil
        let toCancel = sources
        sources = []
        lock.unlock()
        toCancel.forEach { $0.cancel() }
        pending?.resume()
    }
}

/// Every arrival of `number` (its default action turned off), until the consumer stops.
func signalStream(_ number: Int32) -> AsyncStream<Void> {
    AsyncStream { continuation in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield() }
        source.resume()
        let box = UncheckedSendableBox(source)
        continuation.onTermination = { _ in box.value.cancel() }
    }
}

/// Carries a value that is only ever used from one place at a time across an
/// isolation boundary (a dispatch source cancelled once).
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
