import Foundation

/// When a failed delivery is tried again, and when it is given up (delivery.md,
/// "Retries and dead letters").
///
/// Exponential backoff with full jitter: after attempt *n* fails, the next one waits a
/// random time in `[0, min(maxBackoff, initialBackoff · 2^(n-1))]`, or until the
/// receiver's `Retry-After` time when that is later. After ``maxAttempts`` attempts the
/// delivery is dead. Full jitter spreads the retries of many deliveries that failed
/// together (a receiver's outage) instead of sending them back in one burst.
///
/// The random source is passed in, so that tests can pin the schedule:
///
/// ```swift
/// let policy = RetryPolicy(maxAttempts: 10, initialBackoff: .seconds(1), maxBackoff: .seconds(600))
/// var random = SystemRandomNumberGenerator()
/// switch policy.decision(afterFailedAttempt: 3, now: Date(), retryAfter: nil, using: &random) {
/// case .retry(let notBefore): print("again at", notBefore)   // within 4 s
/// case .giveUp: print("dead")
/// }
/// ```
package struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first one included; at least 1.
    package var maxAttempts: Int
    /// The longest wait after the first failed attempt.
    package var initialBackoff: Duration
    /// No computed wait is longer than this (a `Retry-After` may be).
    package var maxBackoff: Duration

    package init(maxAttempts: Int = 10, initialBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(600)) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// What to do after a failed attempt.
    package enum Decision: Sendable, Hashable {
        /// Try again, no earlier than `notBefore`.
        case retry(notBefore: Date)
        /// Attempts are exhausted: the delivery is dead.
        case giveUp
    }

    /// The upper bound of the wait after failed attempt `attempt` (1-based):
    /// `min(maxBackoff, initialBackoff · 2^(attempt-1))`.
    package func backoffCeiling(afterFailedAttempt attempt: Int) -> Duration {
        let initial = initialBackoff.seconds
        let ceiling = maxBackoff.seconds
        // 2^62 seconds outlives everything; capping the exponent keeps the arithmetic finite.
        let exponent = Double(min(max(attempt, 1) - 1, 62))
        let seconds = min(ceiling, initial * pow(2, exponent))
        return .seconds(exactly: seconds)
    }

    /// A random wait in `[0, backoffCeiling(afterFailedAttempt:)]` (full jitter).
    package func delay(afterFailedAttempt attempt: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let ceiling = backoffCeiling(afterFailedAttempt: attempt)
        let nanoseconds = ceiling.clampedNanoseconds
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &random))
    }

    /// Retry or give up after failed attempt `attempt` (1-based: the count of attempts
    /// made so far, this one included).
    ///
    /// - Parameter retryAfter: the earliest time the receiver asked for (`Retry-After`);
    ///   the later of it and the jittered backoff wins.
    package func decision(
        afterFailedAttempt attempt: Int, now: Date, retryAfter: Date?, using random: inout some RandomNumberGenerator
    ) -> Decision {
        guard attempt < maxAttempts else { return .giveUp }
        let wait = delay(afterFailedAttempt: attempt, using: &random)
        var notBefore = now.addingTimeInterval(wait.seconds)
        if let retryAfter, retryAfter > notBefore { notBefore = retryAfter }
        return .retry(notBefore: notBefore)
    }


}
