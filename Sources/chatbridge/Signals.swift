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
