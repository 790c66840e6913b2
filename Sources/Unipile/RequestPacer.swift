/// When each request may start, so that requests keep at least `1 / rate` apart.
///
/// Pure bookkeeping over any clock's instants: the first request goes at once, each
/// later one at the later of "now" and one interval after the previous slot. Nothing
/// accumulates while idle, so a quiet period never turns into a burst.
///
/// ```swift
/// var schedule = PacingSchedule<ContinuousClock.Instant>(maxRequestsPerSecond: 20)
/// let now = ContinuousClock.now
/// schedule.reserve(at: now)   // now
/// schedule.reserve(at: now)   // now + 50 ms
/// ```
package struct PacingSchedule<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// The minimum time between two request starts; `nil` for no limit.
    package let interval: Duration?
    private var nextFreeSlot: Instant?

    /// `maxRequestsPerSecond` of 0 (or less, or not finite) means no limit.
    package init(maxRequestsPerSecond: Double) {
        if maxRequestsPerSecond > 0, maxRequestsPerSecond.isFinite {
            let nanoseconds = (1e9 / maxRequestsPerSecond).rounded(.up)
            interval = .nanoseconds(Int64(min(nanoseconds, Double(Int64.max / 2))))
        } else {
            interval = nil
        }
    }

    /// Reserves the next slot for a request asked for at `now`, and returns when it may
    /// start (`now` or later).
    package mutating func reserve(at now: Instant) -> Instant {
        guard let interval else { return now }
        let slot = nextFreeSlot.map { max($0, now) } ?? now
        nextFreeSlot = slot.advanced(by: interval)
        return slot
    }
}

/// Paces the requests of one source: shared by every request the source makes (copies of
/// a ``UnipileClient`` share their pacer), so `max_requests_per_second` holds across them.
///
/// ```swift
/// let pacer = RequestPacer(maxRequestsPerSecond: 5)
/// try await pacer.waitForTurn()   // then send the request
/// ```
package actor RequestPacer {
    private var schedule: PacingSchedule<ContinuousClock.Instant>
    private let clock = ContinuousClock()

    /// The minimum time between two request starts; `nil` for no limit.
    package nonisolated let interval: Duration?

    /// `maxRequestsPerSecond` of 0 means no limit.
    package init(maxRequestsPerSecond: Double) {
        schedule = PacingSchedule(maxRequestsPerSecond: maxRequestsPerSecond)
        interval = schedule.interval
    }

    /// Waits until this request's slot. Throws `CancellationError` when the task is
    /// cancelled while waiting (the slot is then simply unused).
    package func waitForTurn() async throws {
        // Reserve before suspending: requests waiting at the same time get distinct slots.
        let slot = schedule.reserve(at: clock.now)
        if slot > clock.now {
            try await clock.sleep(until: slot, tolerance: nil)
        } else {
            try Task.checkCancellation()
        }
    }
}
