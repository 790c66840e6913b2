import Dispatch
import Synchronization

/// Wakes waiting tasks: a signal, a timeout or cancellation ends a wait. A signal given
/// while nobody waits is kept for the next wait (never lost, never counted twice); a
/// signal given while several wait wakes them all.
///
/// The one continuation-based wake-up of chatbridge: the dispatcher's loops wait on one
/// per sink for new deliveries, the pollers on one for a reload.
///
/// ```swift
/// let wakeup = Wakeup()
/// Task { await wakeup.wait(timeout: .seconds(5)) }   // returns on signal() or after 5 s
/// wakeup.signal()
/// ```
package final class Wakeup: Sendable {
    private struct State {
        var signalled = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Fires the timeouts of every wake-up (a serial queue of its own, not the global one).
    private static let timers = DispatchQueue(label: "chatbridge.wakeup-timers")

    package init() {}

    /// Wakes every task waiting now, or the next one to wait when none is.
    package func signal() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.waiters.isEmpty else {
                state.signalled = true
                return []
            }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        waiting.forEach { $0.resume() }
    }

    /// Returns on a signal (or one kept from before), after `timeout` (never, when `nil`),
    /// or when the task is cancelled.
    package func wait(timeout: Duration?) async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signalled {
                        state.signalled = false
                        return true
                    }
                    if state.cancelled.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow {
                    continuation.resume()
                    return
                }
                guard let timeout else { return }
                let nanoseconds = Int(clamping: timeout.clampedNanoseconds)
                Self.timers.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                    take(id)?.resume()
                }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let continuation = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return continuation
            }
            waiting?.resume()
        }
        // A cancellation that came after the wait ended leaves no trace.
        _ = state.withLock { $0.cancelled.remove(id) }
    }

    private func take(_ id: UInt64) -> CheckedContinuation<Void, Never>? {
        state.withLock { $0.waiters.removeValue(forKey: id) }
    }
}
