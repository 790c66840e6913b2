import Foundation
import ChatBridgeCore
import Formats

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
package protocol DeliverySink: Sendable {
    /// Makes one attempt at `request`. Must return within the sink's own timeout.
    func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome

    /// At most this many deliveries of this sink run at once, whatever the configured
    /// concurrency; `nil` (the default) for no limit of the sink's own. Standard output
    /// says 1: its lines come out in order.
    var maximumConcurrency: Int? { get }

    /// Whether the sink reads ``DeliveryRequest/event``, the event parsed (a template, an
    /// environment made of its fields): `true` by default. A sink that sends only
    /// ``DeliveryRequest/eventWithRuleBytes`` says `false`, and the dispatcher hands it the
    /// stored text without parsing it.
    var readsParsedEvent: Bool { get }
}

extension DeliverySink {
    package var maximumConcurrency: Int? { nil }
    package var readsParsedEvent: Bool { true }
}

/// One attempt at one (event, rule, sink) delivery, as a sink sees it.
package struct DeliveryRequest: Sendable {
    /// The outbox row; `nil` for deliveries that have no row (`chatbridge rules test`).
    package var deliveryID: Int64?
    /// The event id: unique, the same on every retry and replay.
    package var eventID: String
    /// The event as given, or parsed by the dispatcher; `nil` when the request carries only
    /// the stored text (see ``init(deliveryID:eventID:storedEventText:rule:sink:template:attempt:)``).
    private var parsedEvent: JSONValue?
    /// The JSON text the event came from, when it came from the store as compact JSON:
    /// ``eventWithRuleBytes`` splices `rule` into it instead of encoding the event again.
    private var storedText: [UInt8]?
    /// The rule that matched, or `nil` when no rules are configured.
    package var rule: String?
    /// The sink's name, for messages and `webhook-id`.
    package var sink: String
    /// The rule's `template`, which overrides the sink's own for the text it renders;
    /// `nil` when the rule has none (then the sink's template, else the default summary).
    package var template: DeliveryTemplate?
    /// 1 for the first attempt.
    package var attempt: Int

    package init(
        deliveryID: Int64? = nil, eventID: String, event: JSONValue, rule: String?, sink: String,
        template: DeliveryTemplate? = nil, attempt: Int = 1
    ) {
        self.init(
            deliveryID: deliveryID, eventID: eventID, parsedEvent: event, storedText: nil, rule: rule, sink: sink,
            template: template, attempt: attempt)
    }

    /// A request for a stored event: `storedText` is its compact JSON text (as the store
    /// keeps it) and `event` that text parsed.
    package init(
        deliveryID: Int64?, eventID: String, storedText: [UInt8], event: JSONValue, rule: String?, sink: String,
        template: DeliveryTemplate? = nil, attempt: Int = 1
    ) {
        self.init(
            deliveryID: deliveryID, eventID: eventID, parsedEvent: event, storedText: storedText, rule: rule, sink: sink,
            template: template, attempt: attempt)
    }

    /// A request for a stored event that is not parsed, for a sink that does not read
    /// ``event`` (``DeliverySink/readsParsedEvent``): `storedEventText` is the event's JSON
    /// object as the store keeps it, on one line (``isOneObjectLine(_:)``) and without
    /// `rule` (stored events never have one; a digest's text does, and is parsed instead).
    package init(
        deliveryID: Int64?, eventID: String, storedEventText: [UInt8], rule: String?, sink: String,
        template: DeliveryTemplate? = nil, attempt: Int = 1
    ) {
        self.init(
            deliveryID: deliveryID, eventID: eventID, parsedEvent: nil, storedText: storedEventText, rule: rule,
            sink: sink, template: template, attempt: attempt)
    }

    private init(
        deliveryID: Int64?, eventID: String, parsedEvent: JSONValue?, storedText: [UInt8]?, rule: String?, sink: String,
        template: DeliveryTemplate?, attempt: Int
    ) {
        self.deliveryID = deliveryID
        self.eventID = eventID
        self.parsedEvent = parsedEvent
        self.storedText = storedText
        self.rule = rule
        self.sink = sink
        self.template = template
        self.attempt = attempt
    }

    /// The stored event JSON, without `rule`; parsed from the stored text when the request
    /// was made without the parsed event (`null` if that text is not JSON).
    package var event: JSONValue {
        if let parsedEvent { return parsedEvent }
        return storedText.flatMap { try? JSONValue.parse($0) } ?? .null
    }

    /// The event as users receive it: with `"rule": NAME` when a rule matched.
    package var eventWithRule: JSONValue {
        let event = event
        guard let rule, case .object(var object) = event else { return event }
        object["rule"] = .string(rule)
        return .object(object)
    }

    /// Whether `text` has the shape the store's event texts have: a JSON object on one
    /// line (`{` first, `}` last, no raw line break, which in JSON text can only be white
    /// space between tokens).
    package static func isOneObjectLine(_ text: [UInt8]) -> Bool {
        guard text.count >= 2, text.first == UInt8(ascii: "{"), text.last == UInt8(ascii: "}") else { return false }
        return text.withUnsafeBytes { bytes in
            memchr(bytes.baseAddress!, 0x0A, bytes.count) == nil && memchr(bytes.baseAddress!, 0x0D, bytes.count) == nil
        }
    }

    /// ``eventWithRule`` as compact JSON: the stored text with `,"rule":NAME` before its
    /// closing brace (the same bytes encoding would give, `rule` being the last member
    /// and the stored event having none), or the event encoded when there is no stored
    /// text or it does not have that shape.
    package var eventWithRuleBytes: [UInt8] {
        guard let storedText, Self.isOneObjectLine(storedText) else { return eventWithRule.compactBytes }
        let isEmptyObject: Bool
        if let parsedEvent {
            guard case .object(let object) = parsedEvent, object["rule"] == nil else { return eventWithRule.compactBytes }
            isEmptyObject = object.isEmpty
        } else {
            // Not parsed: the text between the braces is white space only, or members.
            isEmptyObject = storedText.dropFirst().dropLast().allSatisfy { $0 == 0x20 || $0 == 0x09 }
        }
        guard let rule else { return storedText }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(storedText.count + rule.utf8.count + 16)
        bytes.append(contentsOf: storedText.dropLast())
        if !isEmptyObject { bytes.append(UInt8(ascii: ",")) }
        bytes.append(contentsOf: #""rule":"#.utf8)
        JSONValue.string(rule).write(into: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}

/// How one attempt went, as a sink reports it.
package enum DeliveryOutcome: Sendable, Hashable {
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
    package var status: Int? {
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
package enum HTTPOutcome {
    /// The number of body bytes kept in an error message.
    package static let keptBodyBytes = 1024

    /// Classifies a response.
    ///
    /// - 2xx: delivered.
    /// - 408, 425, 429, 5xx: retried; `Retry-After` (seconds or HTTP-date) sets the
    ///   earliest next attempt.
    /// - 3xx: dead (a POST is never redirected), with where `Location` points relative
    ///   to the request (another scheme, another host), never its host or path: an
    ///   http-to-https redirect repeats the URL, whose host and path may be credentials.
    /// - other 4xx (and anything else): dead, with the status and the first 1 KiB of the body.
    ///
    /// Each of `hiding` (what a receiver may echo of the request, ``HTTPExchange/echoable(url:headerValues:)``)
    /// is replaced by `<redacted>` in the body's excerpt (``excerpt(_:hiding:)``): the
    /// error is logged and stored with the delivery.
    package static func classify(
        status: Int, location: String?, retryAfter: String?, body: [UInt8], sink: String, now: Date,
        hiding: [String] = [], requestURL: String? = nil
    ) -> DeliveryOutcome {
        // The error text is made only for a failure: a success (most attempts) needs none.
        func described() -> String {
            let excerpt = excerpt(body, hiding: hiding)
            return excerpt.isEmpty ? "sink \(sink): HTTP \(status)" : "sink \(sink): HTTP \(status): \(excerpt)"
        }
        switch status {
        case 200...299:
            return .delivered(status: status)
        case 408, 425, 429, 500...599:
            return .retry(status: status, error: described(), retryAfter: retryAfter.flatMap { RetryAfter.parse($0, now: now) })
        case 300...399:
            let target = location.map { " \(redirectTarget($0, from: requestURL))" } ?? " (no Location)"
            return .dead(status: status, error: "sink \(sink): HTTP \(status) redirect\(target), not followed for POST")
        default:
            return .dead(status: status, error: described())
        }
    }

    /// The first kept bytes of `body` on one line (``bodyExcerpt(_:)``), each of `hiding`
    /// (at least 4 characters) replaced by `<redacted>`, and so is the start of one that
    /// the cut at 1 KiB left at the end.
    package static func excerpt(_ body: [UInt8], hiding: [String]) -> String {
        var excerpt = bodyExcerpt(body)
        let secrets = hiding.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
        for secret in secrets where excerpt.contains(secret) {
            excerpt = excerpt.replacingOccurrences(of: secret, with: "<redacted>")
        }
        for secret in secrets where secret.count > 4 {
            for length in stride(from: secret.count - 1, through: 4, by: -1) where excerpt.hasSuffix(String(secret.prefix(length))) {
                excerpt = String(excerpt.dropLast(length)) + "<redacted>"
                break
            }
        }
        return excerpt
    }

    /// Where a redirect points, as far as it is safe to say: relative to `requestURL`
    /// (the same host or another, the scheme), never a host name or a path.
    ///
    /// ```swift
    /// HTTPOutcome.redirectTarget("https://hooks.example/T0/token", from: "http://hooks.example/T0/token")
    /// // "to https on the same host (Location hidden)"
    /// ```
    static func redirectTarget(_ location: String, from requestURL: String?) -> String {
        guard let target = URLComponents(string: location), let host = target.host, !host.isEmpty else {
            return "to a path on the same host (Location hidden)"
        }
        let request = requestURL.flatMap { URLComponents(string: $0) }
        let scheme = (target.scheme ?? "").lowercased()
        let shownScheme = ["http", "https"].contains(scheme) ? scheme : "another scheme"
        guard let requestHost = request?.host, requestHost.lowercased() == host.lowercased() else {
            return "to \(shownScheme) on another host (Location hidden)"
        }
        return "to \(shownScheme) on the same host (Location hidden)"
    }

    /// A failure before any response: connection refused, TLS, timeout. Always retried.
    package static func failure(_ reason: String, sink: String) -> DeliveryOutcome {
        .retry(status: nil, error: "sink \(sink): \(reason)")
    }

    /// The first ``keptBodyBytes`` bytes of a body as text, cut at a character boundary,
    /// control characters shown as spaces so that an error stays one readable line.
    package static func bodyExcerpt(_ body: [UInt8]) -> String {
        oneLine(TextLimit.prefix(String(decoding: body.prefix(keptBodyBytes + 4), as: UTF8.self), maxUTF8Bytes: keptBodyBytes))
    }

    /// The last ``keptBodyBytes`` bytes of `output` as text on one line, as
    /// ``bodyExcerpt(_:)`` does with the first: a command's output says why it failed at
    /// its end.
    package static func outputExcerpt(_ output: [UInt8]) -> String {
        var text = Substring(String(decoding: output.suffix(keptBodyBytes + 4), as: UTF8.self))
        while text.utf8.count > keptBodyBytes { text = text.dropFirst() }
        return oneLine(String(text))
    }

    /// `text` with control characters as spaces, trimmed.
    private static func oneLine(_ text: String) -> String {
        let cleaned = String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            scalar.properties.generalCategory == .control ? " " : scalar
        }))
        return cleaned.trimmingCharacters(in: .whitespaces)
    }
}
