import Dispatch
import Foundation
import Logging
import Synchronization

/// Works off the outbox: attempts due deliveries with their sinks and records every
/// outcome (delivery.md, "Retries and dead letters"; architecture.md, "Outbox").
///
/// Each sink has a loop of its own (in one task group), so a slow or failing sink never
/// delays another. A loop keeps up to `concurrency` deliveries in flight (fewer when the
/// sink says so: `stdout` writes one line at a time), asks the ``DeliveryQueue`` for due
/// rows oldest first (the queue skips a row while an older row of the same chat is
/// pending, so per-chat order survives retries; the loop passes the rows it has in
/// flight), and records each outcome in a short transaction of its own, never across
/// an attempt. Failed attempts are scheduled by the ``RetryPolicy``; when attempts are
/// exhausted the delivery is dead.
///
/// A loop sleeps until the next retry falls due, an attempt finishes, or
/// ``notifyNewDeliveries()`` says new rows exist (the poller calls it after each
/// transaction that added deliveries). It also looks again every `idlePollInterval`
/// (5 s), for rows another process queued (`chatbridge replay`). It never busy-loops.
///
/// ```swift
/// let dispatcher = Dispatcher(queue: store, sinks: sinks, policy: RetryPolicy(maxAttempts: 10),
///                             concurrency: 8, ruleTemplates: templates, logger: logger)
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { try await dispatcher.run() }     // until cancelled
///     group.addTask { /* poll; after each transaction: */ dispatcher.notifyNewDeliveries() }
/// }
/// // chatbridge run --once: one poll, then
/// try await dispatcher.drain(timeout: .seconds(30))
/// ```
///
/// When a sink reports ``DeliveryOutcome/outputClosed`` (standard output closed), the
/// delivery stays pending and ``run()`` / ``drain(timeout:)`` throw ``OutputClosed``: the
/// runtime ends quietly with status 0.
///
/// On cancellation, attempts in flight are cut short (a webhook request is cancelled, a
/// command gets `SIGTERM`); an attempt cut short is not counted and its row stays pending.
public final class Dispatcher: Sendable {
    /// Thrown by ``Dispatcher/run()`` and ``Dispatcher/drain(timeout:)`` when a sink's
    /// output is gone (standard output closed).
    public struct OutputClosed: Error, Sendable, CustomStringConvertible {
        public var sink: String
        public var description: String { "sink \(sink): output closed" }
    }

    private let queue: any DeliveryQueue
    private let sinks: [String: any DeliverySink]
    private let policy: RetryPolicy
    private let concurrency: Int
    private let ruleTemplates: [String: DeliveryTemplate]
    private let idlePollInterval: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let random: Mutex<any RandomNumberGenerator & Sendable>
    private let wakeups: [String: Wakeup]
    /// Where each attempt's outcome is counted (`/metrics`).
    private let metrics: BridgeMetrics?

    /// - Parameters:
    ///   - queue: the outbox (``SQLiteStore`` in the daemon).
    ///   - sinks: every configured sink by name; rows of a sink not listed here wait.
    ///   - policy: the retry schedule (`delivery:` of the configuration).
    ///   - concurrency: deliveries in flight per sink, at least 1.
    ///   - ruleTemplates: each rule's `template`, by rule name; it overrides the sink's.
    ///   - idlePollInterval: the longest sleep of an idle loop, so that rows queued by
    ///     another process are picked up.
    ///   - now: the clock.
    ///   - random: the jitter of the retry schedule.
    ///   - metrics: counts every recorded outcome (`chatbridge_deliveries_total`);
    ///     attempts cut short are not outcomes.
    public init(
        queue: any DeliveryQueue,
        sinks: [String: any DeliverySink],
        policy: RetryPolicy,
        concurrency: Int,
        ruleTemplates: [String: DeliveryTemplate] = [:],
        idlePollInterval: Duration = .seconds(5),
        logger: Logger = Logger(label: "chatbridge.delivery"),
        now: @escaping @Sendable () -> Date = { Date() },
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metrics: BridgeMetrics? = nil
    ) {
        self.queue = queue
        self.sinks = sinks
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self.ruleTemplates = ruleTemplates
        self.idlePollInterval = idlePollInterval
        self.logger = logger
        self.now = now
        self.random = Mutex(random)
        self.wakeups = sinks.mapValues { _ in Wakeup() }
        self.metrics = metrics
    }

    /// Wakes every sink loop: new rows were written (or may fall due now).
    public func notifyNewDeliveries() {
        for wakeup in wakeups.values { wakeup.signal() }
    }

    /// Delivers until cancelled.
    ///
    /// - Throws: ``OutputClosed`` when a sink's output is gone; errors of the store are
    ///   logged and retried with backoff, never thrown.
    public func run() async throws {
        try await runLoops(deadline: nil)
    }

    /// Attempts every delivery due now, keeps going with retries that fall due within
    /// `timeout`, then returns (`chatbridge run --once`). Returns as soon as nothing more
    /// can fall due within the timeout, and at the latest when it ends; attempts in flight
    /// then are cut short and stay pending, as does everything not yet due.
    ///
    /// - Throws: ``OutputClosed`` when a sink's output is gone.
    public func drain(timeout: Duration) async throws {
        let deadline = now().addingTimeInterval(RetryPolicy.seconds(timeout))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.runLoops(deadline: deadline) }
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            defer { group.cancelAll() }
            // The first child to finish ends the drain: all loops done, or the timeout.
            try await group.next()
        }
    }

    // MARK: Loops

    private func runLoops(deadline: Date?) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            for (name, sink) in sinks {
                let limit = min(concurrency, max(1, sink.maximumConcurrency ?? concurrency))
                group.addTask { try await self.runSink(name: name, sink: sink, limit: limit, deadline: deadline) }
            }
        }
    }

    /// The loop of one sink. `deadline` set: drain mode (end when nothing more falls due
    /// before it).
    private func runSink(name: String, sink: any DeliverySink, limit: Int, deadline: Date?) async throws {
        let wakeup = wakeups[name]!
        let state = LoopState()
        var storeFailures = 0
        let logger = { var logger = self.logger; logger[metadataKey: "sink"] = "\(name)"; return logger }()

        try await withThrowingDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let (inFlight, finishedBefore, closed) = state.withLock { ($0.inFlight, $0.finished, $0.outputClosed) }
                if closed { throw OutputClosed(sink: name) }
                var nextDate: Date?
                do {
                    if inFlight.count < limit {
                        let due = try await queue.dueDeliveries(
                            sink: name, now: now(), excluding: inFlight, limit: limit - inFlight.count)
                        for row in due {
                            state.withLock { _ = $0.inFlight.insert(row.id) }
                            group.addTask {
                                let outcome = await self.attempt(row, sink: sink, logger: logger)
                                state.withLock { state in
                                    state.inFlight.remove(row.id)
                                    state.finished += 1
                                    if outcome == .outputClosed { state.outputClosed = true }
                                }
                                wakeup.signal()
                            }
                        }
                        if inFlight.count + due.count < limit {
                            nextDate = try await queue.nextAttemptDate(sink: name)
                        }
                    }
                    storeFailures = 0
                } catch {
                    if Task.isCancelled { break }
                    storeFailures += 1
                    let pause = min(30, 0.5 * pow(2, Double(min(storeFailures, 10))))
                    logger.error("cannot read due deliveries; trying again in \(pause) s", metadata: ["error": "\(error)"])
                    await wakeup.wait(timeout: .milliseconds(Int64(pause * 1000)))
                    continue
                }

                let (inFlightCount, finishedAfter) = state.withLock { ($0.inFlight.count, $0.finished) }
                // An attempt that finished while we read may have freed a slot or queued
                // a retry that `nextDate` does not know: look again before sleeping.
                if finishedAfter != finishedBefore { continue }
                let current = now()
                let timeout: Duration?
                if inFlightCount >= limit {
                    timeout = nil // only a finished attempt (or a signal) changes anything
                } else if let nextDate, nextDate > current {
                    if let deadline, inFlightCount == 0, nextDate > deadline { return }
                    timeout = min(.seconds(nextDate.timeIntervalSince(current)), idlePollInterval)
                } else if let nextDate, nextDate <= current {
                    // Due rows exist but are in flight (or blocked behind one): a finished
                    // attempt signals; the short timeout is a safety net.
                    timeout = min(.seconds(1), idlePollInterval)
                } else {
                    if deadline != nil, inFlightCount == 0 { return }
                    timeout = deadline == nil ? idlePollInterval : nil
                }
                await wakeup.wait(timeout: timeout)
            }
        }
    }

    /// What a sink loop shares with its attempts.
    private final class LoopState: Sendable {
        struct Values {
            var inFlight: Set<Int64> = []
            /// Attempts finished so far; tells the loop that something changed while it read.
            var finished = 0
            var outputClosed = false
        }

        private let values = Mutex(Values())

        func withLock<Result: Sendable>(_ body: (inout Values) -> Result) -> Result {
            values.withLock { body(&$0) }
        }
    }

    // MARK: One attempt

    /// Makes one attempt at `row` and records its outcome. Returns the sink's outcome.
    private func attempt(_ row: DueDelivery, sink: any DeliverySink, logger: Logger) async -> DeliveryOutcome {
        var logger = logger
        logger[metadataKey: "event_id"] = "\(row.eventID)"
        if let rule = row.rule { logger[metadataKey: "rule"] = "\(rule)" }
        let attempts = row.attempts + 1
        logger[metadataKey: "attempt"] = "\(attempts)"

        let event: JSONValue
        do {
            event = try JSONValue.parse(row.eventJSON)
        } catch {
            let message = row.eventJSON.isEmpty
                ? "sink \(row.sink): the event is no longer stored"
                : "sink \(row.sink): the stored event is not valid JSON (\(error))"
            logger.error("delivery dead: \(message)")
            await record(.dead(status: nil, error: message), row: row, attempts: attempts, logger: logger)
            return .dead(status: nil, error: message)
        }

        let request = DeliveryRequest(
            deliveryID: row.id, eventID: row.eventID, event: event, rule: row.rule, sink: row.sink,
            template: row.rule.flatMap { ruleTemplates[$0] }, attempt: attempts)
        let outcome = await sink.deliver(request)

        let result: DeliveryAttemptResult
        switch outcome {
        case .outputClosed:
            logger.info("output closed; the delivery stays pending")
            return outcome
        case .delivered(let status):
            logger.debug("delivered", metadata: status.map { ["status": "\($0)"] } ?? [:])
            result = .delivered(status: status)
        case .dead(let status, let error):
            logger.error("delivery dead: \(error)")
            result = .dead(status: status, error: error)
        case .retry(let status, let error, let retryAfter):
            if Task.isCancelled {
                // Cut short by shutdown or the end of a drain: not an attempt that counts.
                logger.debug("attempt cut short; the delivery stays pending")
                return outcome
            }
            let decision = random.withLock { random in
                policy.decision(afterFailedAttempt: attempts, now: now(), retryAfter: retryAfter, using: &random)
            }
            switch decision {
            case .retry(let notBefore):
                logger.warning(
                    "attempt failed: \(error); next attempt at \(Timestamp.iso8601(notBefore))")
                result = .retry(notBefore: notBefore, status: status, error: error)
            case .giveUp:
                logger.error("delivery dead after \(attempts) attempts: \(error)")
                result = .dead(status: status, error: "gave up after \(attempts) attempts: \(error)")
            }
        }
        await record(result, row: row, attempts: attempts, logger: logger)
        return outcome
    }

    /// Records an outcome even when the loop is being cancelled (an attempt that happened
    /// must be counted, a delivery that succeeded must not be sent again), retrying a
    /// busy store briefly.
    private func record(_ result: DeliveryAttemptResult, row: DueDelivery, attempts: Int, logger: Logger) async {
        metrics?.recordDelivery(sink: row.sink, result: result)
        let queue = queue
        let date = now()
        // A task of its own: the store's calls throw CancellationError in a cancelled task.
        await Task {
            for (index, pause) in [0.0, 0.2, 1.0].enumerated() {
                if pause > 0 { try? await Task.sleep(for: .milliseconds(Int64(pause * 1000))) }
                do {
                    try await queue.record(result, deliveryID: row.id, attempts: attempts, at: date)
                    return
                } catch {
                    logger.error(
                        "cannot record the outcome of the attempt (\(index + 1) of 3)",
                        metadata: ["error": "\(error)"])
                }
            }
        }.value
    }
}

/// Wakes one waiting loop: a signal, a timeout or cancellation ends its wait. A signal
/// given while nobody waits is kept for the next wait (never lost, never counted twice).
final class Wakeup: Sendable {
    private struct State {
        var signalled = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var cancelledWaiter: UInt64?
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signalled = true
                return nil
            }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume()
    }

    /// Returns on a signal (or one kept from before), after `timeout` (never, when `nil`),
    /// or when the task is cancelled.
    func wait(timeout: Duration?) async {
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
                    if state.cancelledWaiter == id { return true }
                    state.waiter = (id, continuation)
                    return false
                }
                if resumeNow {
                    continuation.resume()
                    return
                }
                guard let timeout else { return }
                let nanoseconds = Int(clamping: RetryPolicy.nanoseconds(timeout))
                DeliveryTimers.queue.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                    take(id)?.resume()
                }
            }
        } onCancel: {
            state.withLock { $0.cancelledWaiter = id }
            take(id)?.resume()
        }
    }

    private func take(_ id: UInt64) -> CheckedContinuation<Void, Never>? {
        state.withLock { state in
            guard let waiter = state.waiter, waiter.id == id else { return nil }
            state.waiter = nil
            return waiter.continuation
        }
    }
}

/// The queue that fires delivery timeouts (wake-ups, kill graces, pipe lingers).
///
/// A serial queue of its own rather than `DispatchQueue.global()`: the global queue has
/// about one thread per core, and if anything blocks them, timers would fire late. Its
/// handlers only resume a continuation or set a flag.
enum DeliveryTimers {
    static let queue = DispatchQueue(label: "chatbridge.delivery-timers")
}
