import Foundation

/// What the daemon asks of a store beyond reading and writing: whether it takes a write
/// now (`/healthz`), and a one-line reason for an error it threw.
package protocol StoreHealth: Sendable {
    /// Proves that the store takes a write now, waiting at most `timeout`.
    /// - Throws: ``StoreNotWritable`` with the reason (never a path's secret or a password).
    func checkWritable(timeout: Duration, now: Date) async throws(StoreNotWritable)

    /// One line saying why a call to this store failed, for logs and `/healthz`.
    func reason(for error: any Error) -> String
}

/// A store the daemon and the commands run on: the store interface, its health, and what
/// `chatbridge explain` asks of it.
package typealias RuntimeStore = BridgeStore & StoreHealth & EventExplanationStore
