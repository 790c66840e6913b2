import Dispatch
import Foundation
import Logging
import Synchronization
import ChatBridgeCore
import Formats
import Rules

import Store

/// Works off the outbox: attempts due deliveries with their sinks and records every
/// outcome (delivery.md, "Retries and dead letters"; architecture.md, "Outbox").
///
/// Each sink has a loop of its own (in one task group), so a slow or failing sink never
/// delays another. A loop keeps up to `concurrency` deliveries in flight (fewer when the
/// sink says so: `stdout` writes one line at a time). It reads due rows from the
/// ``DeliveryQueue`` in batches larger than its free slots and keeps them in a local
/// queue, oldest first: a batch holds at most one row per chat (the queue skips a row
/// while an older row of the same chat is pending, and the loop excludes the rows it
/// has in flight or not yet recorded), so per-chat order survives retries and no two
/// rows of one chat are ever in flight together. Outcomes are recorded in batches, in
/// one short transaction each (never across an attempt): when enough have gathered,
/// before the loop reads again, when it goes idle, and at the latest ``recordDelay``
/// after the oldest. An outcome not yet recorded when the process dies is simply
/// attempted again: at least once. Failed attempts are scheduled by the
/// ``RetryPolicy``; when attempts are exhausted the delivery is dead.
///
/// A row whose rule is in its quiet hours when it falls due is not attempted: it is
/// postponed to the end of the window, its attempt count unchanged (rules.md).
///
/// A loop sleeps until the next retry falls due, an attempt finishes, or
/// ``notifyNewDeliveries()`` says new rows exist (the poller calls it after each
/// transaction that added deliveries). It also looks again every `idlePollInterval`
/// (5 s), for rows another process queued (`chatbridge replay`). It never busy-loops.
///
/// ```swift
/// let dispatcher = Dispatcher(queue: store, sinks: sinks, policy: RetryPolicy(maxAttempts: 10),
///                             concurrency: 8, ruleTemplates: templates, quietHours: quiet, logger: logger)
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
/// Outcomes of attempts that did finish are recorded before the loop ends.
package final class Dispatcher: Sendable {
    /// Thrown by ``Dispatcher/run()`` and ``Dispatcher/drain(timeout:)`` when a sink's
    /// output is gone (standard output closed).
    package struct OutputClosed: Error, Sendable, CustomStringConvertible {
        package var sink: String
        package var description: String { "sink \(sink): output closed" }
    }

    /// How ``Dispatcher/drain(timeout:)`` ended.
    package enum DrainEnd: Sendable, Hashable {
        /// Every loop stopped because nothing more could fall due before the timeout.
        case nothingMoreDue
        /// The timeout came first; attempts in flight were cut short and stay pending.
        case timedOut
    }

    /// Outcomes gathered before one transaction records them.
    static let recordBatchSize = 64
    /// The longest an outcome waits to be recorded while its loop is busy.
    static let recordDelay: Duration = .milliseconds(50)

    private let queue: any DeliveryQueue
    private let sinks: [String: any DeliverySink]
    private let policy: RetryPolicy
    private let concurrency: Int
    private let ruleTemplates: [String: DeliveryTemplate]
    private let quietHours: [String: QuietHours]
    private let idlePollInterval: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let random: Mutex<any RandomNumberGenerator & Sendable>
    private let wakeups: [String: Wakeup]
    /// Where each attempt's outcome is counted (`/metrics`).
    private let metrics: (any DeliveryMetrics)?

    /// - Parameters:
    ///   - queue: the outbox (the store in the daemon).
    ///   - sinks: every configured sink by name; rows of a sink not listed here wait.
    ///   - policy: the retry schedule (`delivery:` of the configuration).
    ///   - concurrency: deliveries in flight per sink, at least 1.
    ///   - ruleTemplates: each rule's `template`, by rule name; it overrides the sink's.
    ///   - quietHours: each rule's `quiet_hours`, by rule name: its rows that fall due
    ///     inside the window wait until it ends.
    ///   - idlePollInterval: the longest sleep of an idle loop, so that rows queued by
    ///     another process are picked up.
    ///   - now: the clock.
    ///   - random: the jitter of the retry schedule.
    ///   - metrics: counts every outcome (`chatbridge_delivery_attempts_total`); attempts cut
    ///     short are not outcomes.
    package init(
        queue: any DeliveryQueue,
        sinks: [String: any DeliverySink],
        policy: RetryPolicy,
        concurrency: Int,
        ruleTemplates: [String: DeliveryTemplate] = [:],
        quietHours: [String: QuietHours] = [:],
        idlePollInterval: Duration = .seconds(5),
        logger: Logger = Logger(label: "chatbridge.delivery"),
        now: @escaping @Sendable () -> Date = { Date() },
        random: any RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        metrics: (any DeliveryMetrics)? = nil
    ) {
        self.queue = queue
        self.sinks = sinks
        self.policy = policy
        self.concurrency = max(1, concurrency)
        self.ruleTemplates = ruleTemplates
        self.quietHours = quietHours
        self.idlePollInterval = idlePollInterval
        self.logger = logger
        self.now = now
        self.random = Mutex(random)
        self.wakeups = sinks.mapValues { _ in Wakeup() }
        self.metrics = metrics
    }

    /// Set by ``finishInFlight()``.
    private let stopping = Mutex(false)

    /// Stops starting attempts: ``run()`` returns once the attempts in flight have ended
    /// and their outcomes are recorded (graceful shutdown: the delivery in hand finishes).
    /// What was not started stays pending.
    package func finishInFlight() {
        stopping.withLock { $0 = true }
        notifyNewDeliveries()
    }

    /// Wakes every sink loop: new rows were written (or may fall due now).
    package func notifyNewDeliveries() {
        for wakeup in wakeups.values { wakeup.signal() }
    }

    /// Delivers until cancelled.
    ///
    /// - Throws: ``OutputClosed`` when a sink's output is gone; errors of the store are
    ///   logged and retried with backoff, never thrown.
    package func run() async throws {
        try await runLoops(deadline: nil)
    }

    /// Attempts every delivery due now, keeps going with retries that fall due within
    /// `timeout`, then returns (`chatbridge run --once`). Returns as soon as nothing more
    /// can fall due within the timeout, and at the latest when it ends; attempts in flight
    /// then are cut short and stay pending, as does everything not yet due.
    ///
    /// - Returns: whether it ended because nothing more could fall due, or by the timeout.
    /// - Throws: ``OutputClosed`` when a sink's output is gone.
    @discardableResult
    package func drain(timeout: Duration) async throws -> DrainEnd {
        let deadline = now().addingTimeInterval(timeout.seconds)
        // The first to finish ends the drain: all loops done, or the timeout.
        let finished: Void? = try await withTimeout(timeout) { try await self.runLoops(deadline: deadline) }
        return finished == nil ? .timedOut : .nothingMoreDue
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

    /// How many due rows a loop reads at once: several rounds of its slots, so that a busy
    /// loop reads the store once per batch rather than once per freed slot.
    static func fetchSize(limit: Int) -> Int {
        min(256, max(64, limit * 16))
    }

    /// The loop of one sink. `deadline` set: drain mode (end when nothing more falls due
    /// before it).
    private func runSink(name: String, sink: any DeliverySink, limit: Int, deadline: Date?) async throws {
        let wakeup = wakeups[name]!
        let state = LoopState()
        let logger = { var logger = self.logger; logger[metadataKey: "sink"] = "\(name)"; return logger }()
        let fetchSize = Self.fetchSize(limit: limit)

        try await withThrowingDiscardingTaskGroup { group in
            // Fetched and not yet started, newest first (the next one is `last`).
            var waiting: [DueDelivery] = []
            var storeFailures = 0
            while !Task.isCancelled {
                if state.withLock({ $0.outputClosed }) { return }
                if stopping.withLock({ $0 }) {
                    waiting.removeAll()
                    if state.withLock({ $0.inFlight.isEmpty }) { break }
                    await wakeup.wait(timeout: .milliseconds(100))
                    continue
                }

                // Start what was fetched while slots are free.
                var inFlightCount = state.withLock { $0.inFlight.count }
                while inFlightCount < limit, let row = waiting.popLast() {
                    if let update = quietHoursPostponement(row, logger: logger) {
                        state.withLock { $0.buffer(update) }
                        continue
                    }
                    state.withLock { _ = $0.inFlight.insert(row.id) }
                    inFlightCount += 1
                    group.addTask {
                        let (outcome, update) = await self.attempt(row, sink: sink, logger: logger)
                        state.withLock { state in
                            state.inFlight.remove(row.id)
                            if let update { state.buffer(update) }
                            if outcome == .outputClosed { state.outputClosed = true }
                        }
                        wakeup.signal()
                    }
                }

                // Record what gathered: enough of it, old enough, or the loop may go idle.
                let (bufferedCount, oldest) = state.withLock { ($0.buffered.count, $0.oldestBuffered) }
                if bufferedCount >= Self.recordBatchSize || (bufferedCount > 0 && inFlightCount == 0)
                    || oldest.map({ ContinuousClock.now - $0 >= Self.recordDelay }) == true {
                    await flush(state, logger: logger)
                }

                // Read the next batch when every fetched row is started and a slot is free.
                var nextDate: Date?
                if inFlightCount < limit, waiting.isEmpty {
                    do {
                        await flush(state, logger: logger)
                        let excluded = state.withLock { $0.inFlight.union($0.bufferedIDs) }
                        let due = try await queue.dueDeliveries(
                            sink: name, now: now(), excluding: excluded, limit: fetchSize)
                        storeFailures = 0
                        if !due.isEmpty {
                            waiting = due.reversed()
                            continue
                        }
                        nextDate = try await queue.nextAttemptDate(sink: name)
                    } catch {
                        if Task.isCancelled { break }
                        storeFailures += 1
                        let pause = min(30, 0.5 * pow(2, Double(min(storeFailures, 10))))
                        // Once per outage; the retries of the same outage at debug level.
                        logger.log(
                            level: storeFailures == 1 ? .error : .debug,
                            "cannot read due deliveries; trying again in \(pause) s", metadata: ["error": "\(error)"])
                        await wakeup.wait(timeout: .milliseconds(Int64(pause * 1000)))
                        continue
                    }
                }

                let (inFlightNow, bufferedOldest) = state.withLock { ($0.inFlight.count, $0.oldestBuffered) }
                let current = now()
                var timeout: Duration?
                if inFlightNow >= limit {
                    timeout = nil // only a finished attempt (or a signal) changes anything
                } else if !waiting.isEmpty {
                    continue
                } else if let nextDate, nextDate > current {
                    if let deadline, inFlightNow == 0, bufferedOldest == nil, nextDate > deadline { return }
                    timeout = min(.seconds(nextDate.timeIntervalSince(current)), idlePollInterval)
                } else if let nextDate, nextDate <= current {
                    // Due rows exist but are in flight (or blocked behind one): a finished
                    // attempt signals; the short timeout is a safety net.
                    timeout = min(.seconds(1), idlePollInterval)
                } else {
                    if deadline != nil, inFlightNow == 0, bufferedOldest == nil { return }
                    timeout = deadline == nil ? idlePollInterval : nil
                }
                if let bufferedOldest {
                    // Outcomes wait at most `recordDelay` to be recorded.
                    let left = max(.zero, Self.recordDelay - (ContinuousClock.now - bufferedOldest))
                    timeout = min(timeout ?? left, left)
                }
                await wakeup.wait(timeout: timeout)
            }
        }
        // Attempts have ended (or were cut short): record every outcome that happened.
        await flush(state, logger: logger)
        if state.withLock({ $0.outputClosed }) { throw OutputClosed(sink: name) }
    }

    /// What a sink loop shares with its attempts.
    private final class LoopState: Sendable {
        struct Values {
            var inFlight: Set<Int64> = []
            /// Outcomes not yet recorded, and their rows: the loop must not read those rows
            /// again before they are recorded.
            var buffered: [DeliveryUpdate] = []
            var bufferedIDs: Set<Int64> = []
            var oldestBuffered: ContinuousClock.Instant?
            var outputClosed = false

            mutating func buffer(_ update: DeliveryUpdate) {
                if buffered.isEmpty { oldestBuffered = .now }
                buffered.append(update)
                bufferedIDs.insert(update.deliveryID)
            }
        }

        private let values = Mutex(Values())

        func withLock<Result: Sendable>(_ body: (inout Values) -> Result) -> Result {
            values.withLock { body(&$0) }
        }
    }

    /// Records the outcomes gathered so far in one transaction, even when the loop is
    /// being cancelled (an attempt that happened must be counted, a delivery that
    /// succeeded must not be sent again), retrying a busy store briefly. Should the store
    /// refuse them all, the rows stay pending and are attempted again.
    private func flush(_ state: LoopState, logger: Logger) async {
        let updates = state.withLock { state -> [DeliveryUpdate] in
            defer {
                state.buffered = []
                state.oldestBuffered = nil
            }
            return state.buffered
        }
        guard !updates.isEmpty else { return }
        let queue = queue
        // A task of its own: the store's calls throw CancellationError in a cancelled task.
        await Task {
            for (index, pause) in [0.0, 0.2, 1.0].enumerated() {
                if pause > 0 { try? await Task.sleep(for: .milliseconds(Int64(pause * 1000))) }
                do {
                    try await queue.record(updates)
                    return
                } catch {
                    logger.error(
                        "cannot record the outcomes of \(updates.count) attempts (\(index + 1) of 3)",
                        metadata: ["error": "\(error)"])
                }
            }
        }.value
        // Recorded (or given up): the rows may be read again.
        state.withLock { state in
            for update in updates { state.bufferedIDs.remove(update.deliveryID) }
        }
    }

    /// The postponement of `row` when its rule is in quiet hours now, else `nil`.
    private func quietHoursPostponement(_ row: DueDelivery, logger: Logger) -> DeliveryUpdate? {
        guard let rule = row.rule, let hours = quietHours[rule] else { return nil }
        let current = now()
        guard hours.contains(current) else { return nil }
        let end = hours.end(after: current)
        logger.debug(
            "quiet hours: the delivery waits until \(Timestamp.iso8601(end))",
            metadata: ["event_id": "\(row.eventID)", "rule": "\(rule)"])
        return DeliveryUpdate(deliveryID: row.id, change: .postponed(until: end), at: current)
    }

    // MARK: One attempt

    /// Makes one attempt at `row`. Returns the sink's outcome and the update to record
    /// (`nil` when the attempt does not count: cut short, or the output is gone).
    private func attempt(_ row: DueDelivery, sink: any DeliverySink, logger: Logger) async -> (DeliveryOutcome, DeliveryUpdate?) {
        var logger = logger
        logger[metadataKey: "event_id"] = "\(row.eventID)"
        if let rule = row.rule { logger[metadataKey: "rule"] = "\(rule)" }
        let attempts = row.attempts + 1
        logger[metadataKey: "attempt"] = .stringConvertible(attempts)

        let event: JSONValue
        do {
            event = try JSONValue.parse(row.eventJSON)
        } catch {
            let message = row.eventJSON.isEmpty
                ? "sink \(row.sink): the event is no longer stored"
                : "sink \(row.sink): the stored event is not valid JSON (\(error))"
            logger.error("delivery dead: \(message)")
            let result = DeliveryAttemptResult.dead(status: nil, error: message)
            return (.dead(status: nil, error: message), update(result, row: row, attempts: attempts))
        }

        let request = DeliveryRequest(
            deliveryID: row.id, eventID: row.eventID, event: event, rule: row.rule, sink: row.sink,
            template: row.rule.flatMap { ruleTemplates[$0] }, attempt: attempts)
        let outcome = await sink.deliver(request)

        let result: DeliveryAttemptResult
        switch outcome {
        case .outputClosed:
            logger.info("output closed; the delivery stays pending")
            return (outcome, nil)
        case .delivered(let status):
            logger.debug("delivered", metadata: status.map { ["status": .stringConvertible($0)] } ?? [:])
            result = .delivered(status: status)
            if let detected = event["occurred_at"]?.stringValue.flatMap(Timestamp.parseISO8601) {
                metrics?.recordDeliveryLatency(sink: row.sink, seconds: now().timeIntervalSince(detected))
            }
        case .dead(let status, let error):
            logger.error("delivery dead: \(Self.logged(error))")
            result = .dead(status: status, error: error)
        case .retry(let status, let error, let retryAfter):
            if Task.isCancelled {
                // Cut short by shutdown or the end of a drain: not an attempt that counts.
                logger.debug("attempt cut short; the delivery stays pending")
                return (outcome, nil)
            }
            let decision = random.withLock { random in
                policy.decision(afterFailedAttempt: attempts, now: now(), retryAfter: retryAfter, using: &random)
            }
            switch decision {
            case .retry(let notBefore):
                logger.warning(
                    "attempt failed: \(Self.logged(error)); next attempt at \(Timestamp.iso8601(notBefore))")
                result = .retry(notBefore: notBefore, status: status, error: error)
            case .giveUp:
                logger.error("delivery dead after \(attempts) attempts: \(Self.logged(error))")
                result = .dead(status: status, error: "gave up after \(attempts) attempts: \(error)")
            }
        }
        return (outcome, update(result, row: row, attempts: attempts))
    }

    /// An error as a log line shows it: the store keeps the first 1 KiB of a response
    /// body; a log line keeps its first ``loggedErrorLimit`` characters.
    static func logged(_ error: String) -> String {
        TextLimit.truncated(error, maxUTF16Units: loggedErrorLimit)
    }

    /// How much of an error (with the response body it quotes) a log line shows.
    static let loggedErrorLimit = 300

    /// The update that records `result`, counted in the metrics.
    private func update(_ result: DeliveryAttemptResult, row: DueDelivery, attempts: Int) -> DeliveryUpdate {
        metrics?.recordDelivery(sink: row.sink, result: result)
        return DeliveryUpdate(deliveryID: row.id, change: .attempted(result, attempts: attempts), at: now())
    }
}

