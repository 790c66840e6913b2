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
/// rows of one chat are ever in flight together. Outcomes are recorded in batches by an
/// ``OutcomeRecorder``, in short transactions that run beside the loop and never span an
/// attempt: when 64 have gathered, when no attempt is in flight, and at the latest 50 ms
/// after the oldest; outcomes that arrive while a transaction runs go into the next one.
/// An outcome not yet recorded when the process dies is simply attempted again: at least
/// once. Failed attempts are scheduled by the
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
    ///
    /// Each turn starts what was read while slots are free, reads the next batch when
    /// every row read is started and a slot is free, and otherwise sleeps until an attempt
    /// ends, a transaction of outcomes ends, new rows are announced, or a retry falls due.
    private func runSink(name: String, sink: any DeliverySink, limit: Int, deadline: Date?) async throws {
        let wakeup = wakeups[name]!
        let logger = { var logger = self.logger; logger[metadataKey: "sink"] = "\(name)"; return logger }()
        let loop = SinkLoop(
            name: name, sink: sink, limit: limit, wakeup: wakeup, logger: logger,
            recorder: OutcomeRecorder(queue: queue, logger: logger) { wakeup.signal() })

        // Attempts and transactions of outcomes are child tasks: the group ends once every
        // attempt has ended (or was cut short) and every transaction started has ended.
        try await withThrowingDiscardingTaskGroup { group in
            // Read and not yet started, newest first (the next one is `last`).
            var waiting: [DueDelivery] = []
            var storeFailures = 0
            while !Task.isCancelled {
                if loop.outputClosed { return }
                if stopping.withLock({ $0 }) {
                    waiting.removeAll()
                    if loop.inFlightCount == 0 { return }
                    await wakeup.wait(timeout: .milliseconds(100))
                    continue
                }
                let inFlight = startAttempts(from: &waiting, loop: loop, group: &group)
                if let batch = loop.recorder.startTransaction(inFlight: inFlight) {
                    group.addTask { await loop.recorder.write(batch) }
                }
                if inFlight >= loop.limit {
                    // Only an ended attempt (or a signal) frees a slot.
                    await wakeup.wait(timeout: loop.recorder.timeUntilDue)
                    continue
                }
                // A slot is free and every row read is started: read the next batch. Whether
                // anything was in flight or unrecorded is taken before reading: when nothing
                // was, what the store says next is final.
                let busy = loop.isBusy
                let next: DueRows
                do {
                    next = try await readDue(loop)
                    storeFailures = 0
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
                switch next {
                case .rows(let rows):
                    waiting = rows.reversed()
                case .noneDue(let nextDate):
                    guard let timeout = idleWait(nextDate: nextDate, deadline: deadline, busy: busy) else { return }
                    await wakeup.wait(timeout: [timeout, loop.recorder.timeUntilDue].compactMap { $0 }.min())
                }
            }
        }
        // Every attempt has ended: record the outcomes that still wait.
        await loop.recorder.writeRemaining()
        if loop.outputClosed { throw OutputClosed(sink: name) }
    }

    /// Starts rows from `waiting` while slots are free; a row whose rule is in quiet
    /// hours is postponed instead. Returns how many attempts are in flight.
    private func startAttempts(
        from waiting: inout [DueDelivery], loop: SinkLoop, group: inout ThrowingDiscardingTaskGroup<any Error>
    ) -> Int {
        var inFlight = loop.inFlightCount
        while inFlight < loop.limit, let row = waiting.popLast() {
            if let update = quietHoursPostponement(row, logger: loop.logger) {
                loop.recorder.add(update)
                continue
            }
            loop.started(row.id)
            inFlight += 1
            group.addTask {
                let (outcome, update) = await self.attempt(row, sink: loop.sink, logger: loop.logger)
                // Unrecorded before it leaves the in-flight set: the row is never readable
                // while its outcome is not in the store.
                if let update { loop.recorder.add(update) }
                loop.ended(row.id, outputClosed: outcome == .outputClosed)
                loop.wakeup.signal()
            }
        }
        return inFlight
    }

    /// What one read of the queue found.
    private enum DueRows {
        /// Due rows, oldest first.
        case rows([DueDelivery])
        /// None due now; the earliest pending row falls due then (`nil`: none pending).
        case noneDue(Date?)
    }

    /// The next batch of due rows of the loop's sink, without the rows in flight or with
    /// an outcome not yet recorded (they are still pending in the store).
    private func readDue(_ loop: SinkLoop) async throws -> DueRows {
        // In flight first: an attempt that ends joins the unrecorded rows before it leaves
        // the in-flight set, so no row slips between the two reads.
        let excluded = loop.inFlightIDs.union(loop.recorder.unrecordedIDs)
        let due = try await queue.dueDeliveries(
            sink: loop.name, now: now(), excluding: excluded, limit: Self.fetchSize(limit: loop.limit))
        if !due.isEmpty { return .rows(due) }
        return .noneDue(try await queue.nextAttemptDate(sink: loop.name))
    }

    /// How long a loop with a free slot and nothing due sleeps (`nil` in the result: until
    /// signalled), or `nil` when a drain is over: nothing was in flight or unrecorded when
    /// the store was read (`busy` false) and nothing falls due before the deadline.
    private func idleWait(nextDate: Date?, deadline: Date?, busy: Bool) -> Duration?? {
        let current = now()
        guard let nextDate else {
            // Nothing pending.
            if deadline != nil { return busy ? .some(nil) : nil }
            return .some(idlePollInterval)
        }
        if nextDate <= current {
            // Due rows exist but are in flight (or blocked behind one): an ended attempt
            // signals; the short timeout is a safety net.
            return .some(min(.seconds(1), idlePollInterval))
        }
        if let deadline, !busy, nextDate > deadline { return nil }
        return .some(min(.seconds(nextDate.timeIntervalSince(current)), idlePollInterval))
    }

    /// What a sink loop shares with its attempts.
    private final class SinkLoop: Sendable {
        let name: String
        let sink: any DeliverySink
        /// Attempts in flight at most.
        let limit: Int
        let wakeup: Wakeup
        let logger: Logger
        let recorder: OutcomeRecorder

        private struct Values {
            var inFlight: Set<Int64> = []
            var outputClosed = false
        }

        private let values = Mutex(Values())

        init(name: String, sink: any DeliverySink, limit: Int, wakeup: Wakeup, logger: Logger, recorder: OutcomeRecorder) {
            self.name = name
            self.sink = sink
            self.limit = limit
            self.wakeup = wakeup
            self.logger = logger
            self.recorder = recorder
        }

        var inFlightCount: Int { values.withLock { $0.inFlight.count } }
        var inFlightIDs: Set<Int64> { values.withLock { $0.inFlight } }
        var outputClosed: Bool { values.withLock { $0.outputClosed } }
        /// Attempts in flight, or outcomes not yet recorded.
        var isBusy: Bool { inFlightCount > 0 || !recorder.isIdle }

        func started(_ id: Int64) {
            values.withLock { _ = $0.inFlight.insert(id) }
        }

        func ended(_ id: Int64, outputClosed: Bool) {
            values.withLock { values in
                values.inFlight.remove(id)
                if outputClosed { values.outputClosed = true }
            }
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
        let attempts = row.attempts + 1
        // The attempt's metadata is set only when a line is logged (most attempts log none
        // at the levels in use).
        var attemptLogger: Logger {
            var logger = logger
            logger[metadataKey: "event_id"] = "\(row.eventID)"
            if let rule = row.rule { logger[metadataKey: "rule"] = "\(rule)" }
            logger[metadataKey: "attempt"] = .stringConvertible(attempts)
            return logger
        }

        let storedText = Array(row.eventJSON.utf8)
        let template = row.rule.flatMap { ruleTemplates[$0] }
        let request: DeliveryRequest
        if row.digestID == nil, !sink.readsParsedEvent, DeliveryRequest.isOneObjectLine(storedText) {
            // The sink sends the stored text as it is, `rule` spliced in: no need to parse it.
            request = DeliveryRequest(
                deliveryID: row.id, eventID: row.eventID, storedEventText: storedText, rule: row.rule, sink: row.sink,
                template: template, attempt: attempts)
        } else {
            let event: JSONValue
            do {
                event = try JSONValue.parse(storedText)
            } catch {
                let message = row.eventJSON.isEmpty
                    ? "sink \(row.sink): the event is no longer stored"
                    : "sink \(row.sink): the stored event is not valid JSON (\(error))"
                attemptLogger.error("delivery dead: \(message)")
                let result = DeliveryAttemptResult.dead(status: nil, error: message)
                return (.dead(status: nil, error: message), update(result, row: row, attempts: attempts))
            }
            request = DeliveryRequest(
                deliveryID: row.id, eventID: row.eventID, storedText: storedText, event: event, rule: row.rule,
                sink: row.sink, template: template, attempt: attempts)
        }
        let outcome = await sink.deliver(request)

        let result: DeliveryAttemptResult
        switch outcome {
        case .outputClosed:
            attemptLogger.info("output closed; the delivery stays pending")
            return (outcome, nil)
        case .delivered(let status):
            if logger.logLevel <= .debug {
                attemptLogger.debug("delivered", metadata: status.map { ["status": .stringConvertible($0)] } ?? [:])
            }
            result = .delivered(status: status)
            if let detected = row.occurredAt {
                metrics?.recordDeliveryLatency(sink: row.sink, seconds: now().timeIntervalSince(detected))
            }
        case .dead(let status, let error):
            attemptLogger.error("delivery dead: \(Self.logged(error))")
            result = .dead(status: status, error: error)
        case .retry(let status, let error, let retryAfter):
            if Task.isCancelled {
                // Cut short by shutdown or the end of a drain: not an attempt that counts.
                attemptLogger.debug("attempt cut short; the delivery stays pending")
                return (outcome, nil)
            }
            let decision = random.withLock { random in
                policy.decision(afterFailedAttempt: attempts, now: now(), retryAfter: retryAfter, using: &random)
            }
            switch decision {
            case .retry(let notBefore):
                attemptLogger.warning(
                    "attempt failed: \(Self.logged(error)); next attempt at \(Timestamp.iso8601(notBefore))")
                result = .retry(notBefore: notBefore, status: status, error: error)
            case .giveUp:
                attemptLogger.error("delivery dead after \(attempts) attempts: \(Self.logged(error))")
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

