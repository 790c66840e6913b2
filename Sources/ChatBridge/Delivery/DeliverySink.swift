import Foundation

/// A destination for deliveries: standard output, a webhook, a local command.
///
/// A sink makes one attempt per call and says how it went; it never retries by itself,
/// never touches the store and never throws: the ``Dispatcher`` decides what an outcome
/// means for the outbox row (delivered, retried later, dead) with its ``RetryPolicy``.
/// A sink is shared by every delivery in flight for it, so it must be `Sendable` and
/// safe to call concurrently.
///
/// ```swift
/// struct CountingSink: DeliverySink {
///     let delivered = Mutex(0)
///     func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome {
///         delivered.withLock { $0 += 1 }
///         return .delivered(status: nil)
///     }
/// }
///
/// let dispatcher = Dispatcher(
///     queue: store,
///     sinks: ["count": CountingSink(), "stdout": StdoutSink()],
///     policy: RetryPolicy(maxAttempts: 5),
///     concurrency: 8)
/// try await dispatcher.run()
/// ```
public protocol DeliverySink: Sendable {
    /// Makes one attempt at `request`. Must return within the sink's own timeout.
    func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome

    /// At most this many deliveries of this sink run at once, whatever the configured
    /// concurrency; `nil` (the default) for no limit of the sink's own. Standard output
    /// says 1: its lines come out in order.
    var maximumConcurrency: Int? { get }
}

extension DeliverySink {
    public var maximumConcurrency: Int? { nil }
}

/// One attempt at one (event, rule, sink) delivery, as a sink sees it.
public struct DeliveryRequest: Sendable {
    /// The outbox row; `nil` for deliveries that have no row (`chatbridge rules test`).
    public var deliveryID: Int64?
    /// The event id: unique, the same on every retry and replay.
    public var eventID: String
    /// The stored event JSON, without `rule`.
    public var event: JSONValue
    /// The rule that matched, or `nil` when no rules are configured.
    public var rule: String?
    /// The sink's name, for messages and `webhook-id`.
    public var sink: String
    /// The rule's `template`, which overrides the sink's own for the text it renders;
    /// `nil` when the rule has none (then the sink's template, else the default summary).
    public var template: DeliveryTemplate?
    /// 1 for the first attempt.
    public var attempt: Int

    public init(
        deliveryID: Int64? = nil, eventID: String, event: JSONValue, rule: String?, sink: String,
        template: DeliveryTemplate? = nil, attempt: Int = 1
    ) {
        self.deliveryID = deliveryID
        self.eventID = eventID
        self.event = event
        self.rule = rule
        self.sink = sink
        self.template = template
        self.attempt = attempt
    }

    /// The event as users receive it: with `"rule": NAME` when a rule matched.
    public var eventWithRule: JSONValue {
        guard let rule, case .object(var object) = event else { return event }
        object["rule"] = .string(rule)
        return .object(object)
    }
}

/// How one attempt went, as a sink reports it.
public enum DeliveryOutcome: Sendable, Hashable {
    /// Delivered: 2xx, exit status 0, line written. `status` is the HTTP status or exit code.
    case delivered(status: Int?)
    /// Failed, worth another attempt (5xx, 429, timeouts, connection errors, non-zero
    /// exit). `retryAfter` is the earliest time the receiver asked for, if it did.
    case retry(status: Int?, error: String, retryAfter: Date? = nil)
    /// Failed for good (other 4xx, redirects): another attempt would fail the same way.
    case dead(status: Int?, error: String)
    /// The output is gone (standard output closed: `chatbridge run | head -3`). The
    /// delivery stays pending and the dispatcher stops.
    case outputClosed

    /// The HTTP status or exit code, when there is one.
    public var status: Int? {
        switch self {
        case .delivered(let status), .retry(let status, _, _), .dead(let status, _): status
        case .outputClosed: nil
        }
    }
}

/// What an HTTP response or failure means for a delivery (delivery.md, "Outcome").
///
/// Pure: the webhook sink hands it the status, the headers it needs and the first bytes
/// of the body. Messages name the sink, never its URL.
public enum HTTPOutcome {
    /// The number of body bytes kept in an error message.
    public static let keptBodyBytes = 1024

    /// Classifies a response.
    ///
    /// - 2xx: delivered.
    /// - 408, 425, 429, 5xx: retried; `Retry-After` (seconds or HTTP-date) sets the
    ///   earliest next attempt.
    /// - 3xx: dead (a POST is never redirected), with `Location` in the error.
    /// - other 4xx (and anything else): dead, with the status and the first 1 KiB of the body.
    public static func classify(
        status: Int, location: String?, retryAfter: String?, body: [UInt8], sink: String, now: Date
    ) -> DeliveryOutcome {
        let excerpt = bodyExcerpt(body)
        let described = excerpt.isEmpty ? "sink \(sink): HTTP \(status)" : "sink \(sink): HTTP \(status): \(excerpt)"
        switch status {
        case 200...299:
            return .delivered(status: status)
        case 408, 425, 429, 500...599:
            return .retry(status: status, error: described, retryAfter: retryAfter.flatMap { RetryAfter.parse($0, now: now) })
        case 300...399:
            let target = location.map { " to \(TextLimit.prefix($0, maxUTF8Bytes: keptBodyBytes))" } ?? " (no Location)"
            return .dead(status: status, error: "sink \(sink): HTTP \(status) redirect\(target), not followed for POST")
        default:
            return .dead(status: status, error: described)
        }
    }

    /// A failure before any response: connection refused, TLS, timeout. Always retried.
    public static func failure(_ reason: String, sink: String) -> DeliveryOutcome {
        .retry(status: nil, error: "sink \(sink): \(reason)")
    }

    /// The first ``keptBodyBytes`` bytes of a body as text, cut at a character boundary,
    /// control characters shown as spaces so that an error stays one readable line.
    public static func bodyExcerpt(_ body: [UInt8]) -> String {
        let text = TextLimit.prefix(String(decoding: body.prefix(keptBodyBytes + 4), as: UTF8.self), maxUTF8Bytes: keptBodyBytes)
        let cleaned = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            scalar.properties.generalCategory == .control ? " " : scalar
        }))
        return cleaned.trimmingCharacters(in: .whitespaces)
    }
}

/// Cutting text to a size without splitting a character.
public enum TextLimit {
    /// The longest prefix of `text` of whole characters whose UTF-8 form fits in
    /// `maxUTF8Bytes`.
    public static func prefix(_ text: String, maxUTF8Bytes: Int) -> String {
        guard text.utf8.count > maxUTF8Bytes else { return text }
        return String(text[..<end(of: text, budget: maxUTF8Bytes) { text.utf8.distance(from: $0, to: $1) }])
    }

    /// The longest prefix of `text` of whole characters (grapheme clusters) that takes at
    /// most `maxUTF16Units` UTF-16 code units, with `…` at its end when it had to be cut.
    /// Counting UTF-16 units is the strictest common way services count "characters": a
    /// text that fits here fits whether they count graphemes, scalars or UTF-16 units.
    public static func truncated(_ text: String, maxUTF16Units: Int) -> String {
        guard text.utf16.count > maxUTF16Units else { return text }
        let budget = maxUTF16Units - 1 // room for "…", one UTF-16 unit
        guard budget >= 0 else { return "" }
        return String(text[..<end(of: text, budget: budget) { text.utf16.distance(from: $0, to: $1) }]) + "…"
    }

    /// Where the longest run of whole characters from the start of `text` ends whose
    /// sizes (as `size` measures each character's range) add up to at most `budget`.
    private static func end(
        of text: String, budget: Int, size: (String.Index, String.Index) -> Int
    ) -> String.Index {
        var used = 0
        var end = text.startIndex
        for index in text.indices {
            let next = text.index(after: index)
            used += size(index, next)
            if used > budget { break }
            end = next
        }
        return end
    }
}
