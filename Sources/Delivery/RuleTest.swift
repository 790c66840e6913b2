import Foundation
import ChatBridgeConfig
import ChatBridgeCore
import Formats
import Rules

/// What `chatbridge rules test --event FILE` reports for one rule: whether it matches
/// the event and why, and for each of its sinks what would be sent. Nothing is sent.
///
/// ``json`` is the JSON line printed for it:
///
/// ```json
/// {"rule":"linkedin-inmail-unread","matched":true,"reason":"matched","sends":[
///   {"sink":"stdout","type":"stdout","line":{"id":"…","type":"chat.changed",…,"rule":"linkedin-inmail-unread"}},
///   {"sink":"team-slack","type":"webhook","format":"slack","body":{"text":"New InMail in Jane (3 unread)"}},
///   {"sink":"notify","type":"exec","argv":["/usr/local/bin/notify","--title","Jane"],"stdin":{…}}]}
/// {"rule":"whatsapp-unread","matched":false,"reason":"not selected: `on` lists neither chat.changed nor unread.increased"}
/// {"rule":"vip","matched":false,"reason":"condition error","error":"no such key: 'nme'"}
/// ```
///
/// With no rules at all there is one line, for `"rule": null`: every event goes to
/// `stdout`. Webhook previews show the body only, never the URL, headers or signature.
package struct RuleTestResult: Sendable, Hashable {
    /// The rule's name; `nil` for the no-rules route to `stdout`.
    package var rule: String?
    /// `nil` for a disabled rule, which is not evaluated.
    package var evaluation: RuleEvaluation.Outcome?
    /// What each sink would be sent; empty unless matched.
    package var sends: [SinkPreview]
    /// The rule's throttle, shown because it may hold back a delivery the store would
    /// otherwise write.
    package var throttle: Duration?

    package var isMatch: Bool { evaluation == .matched }

    /// The JSON line for this result.
    package var json: JSONValue {
        var object = JSONObject()
        object["rule"] = rule.map(JSONValue.string) ?? .null
        object["matched"] = .bool(isMatch)
        switch evaluation {
        case nil:
            object["reason"] = .string("disabled (enabled: false)")
        case .matched:
            object["reason"] = .string(rule == nil ? "no rules are configured: every event goes to stdout" : "matched")
        case .notSelected:
            object["reason"] = .string("not selected: `on` lists neither the event's type nor any of its kinds")
        case .conditionFalse:
            object["reason"] = .string("condition is false")
        case .conditionError(let message):
            object["reason"] = .string("condition error: the rule does not match")
            object["error"] = .string(message)
        }
        if let throttle { object["throttle"] = .string(ConfigDuration.format(throttle)) }
        if isMatch { object["sends"] = .array(sends.map(\.json)) }
        return .object(object)
    }
}

/// What one sink would be sent for one (event, rule).
package struct SinkPreview: Sendable, Hashable {
    package enum Content: Sendable, Hashable {
        /// `stdout`: the JSON line (the event with `rule`).
        case line(JSONValue)
        /// `webhook`: its format and the request body.
        case webhook(format: String, body: JSONValue)
        /// `exec`: the argument vector after templating, and standard input.
        case exec(argv: [String], stdin: JSONValue)
        /// `http`: the method, content type and body size, or why the event has no
        /// request. Not the URL, headers or body: any of them may hold a token.
        case http(method: String, contentType: String?, bodyBytes: Int?, error: String?)
        /// A sink named in `send` that the configuration does not have (only when the
        /// rules were checked against other sinks).
        case unknownSink
    }

    package var sink: String
    package var content: Content

    package var json: JSONValue {
        var object: JSONObject = ["sink": .string(sink)]
        switch content {
        case .line(let line):
            object["type"] = .string("stdout")
            object["line"] = line
        case .webhook(let format, let body):
            object["type"] = .string("webhook")
            object["format"] = .string(format)
            object["body"] = body
        case .exec(let argv, let stdin):
            object["type"] = .string("exec")
            object["argv"] = .array(argv.map(JSONValue.string))
            object["stdin"] = stdin
        case .http(let method, let contentType, let bodyBytes, let error):
            object["type"] = .string("http")
            object["method"] = .string(method)
            if let contentType { object["content_type"] = .string(contentType) }
            if let bodyBytes { object["body_bytes"] = .int(Int64(bodyBytes)) }
            if let error { object["error"] = .string(error) }
        case .unknownSink:
            object["type"] = .null
            object["error"] = .string("no sink of this name is configured")
        }
        return .object(object)
    }
}

extension RuleSet {
    /// Completes a hand-written or stored event JSON so that it reads as an ``Event``:
    /// drops `rule`; fills `id` (with `newEventID()`) and `occurred_at` (with `now`) when
    /// missing; for chat events, fills `chat_id`, `account_id` and `account_type` from
    /// the chat's `id`, `account_id` and `account_type`, and `kinds` with the type for
    /// `chat.added` / `chat.removed`.
    ///
    /// - Throws: ``EventDecodingError`` when the JSON is not an object or its `type` or
    ///   `kinds` are not ones chatbridge knows.
    package static func completeTestEvent(
        _ json: JSONValue, now: Date, newEventID: () -> String
    ) throws(EventDecodingError) -> Event {
        guard var object = json.objectValue else { throw EventDecodingError("an event must be a JSON object") }
        object["rule"] = nil
        if object["id"]?.stringValue?.isEmpty ?? true { object["id"] = .string(newEventID()) }
        if object["occurred_at"]?.stringValue.flatMap(Timestamp.parseISO8601) == nil {
            if let written = object["occurred_at"], !written.isNull {
                throw EventDecodingError("\"occurred_at\" must be an ISO 8601 time such as 2026-11-24T22:05:15.123Z")
            }
            object["occurred_at"] = .string(Timestamp.iso8601(now))
        }
        if let chat = object["chat"]?.objectValue {
            for (member, chatMember) in [("chat_id", "id"), ("account_id", "account_id"), ("account_type", "account_type")]
            where object[member] == nil || object[member] == .null {
                if let value = chat[chatMember]?.stringValue { object[member] = .string(value) }
            }
        }
        if object["kinds"] == nil, let type = object["type"]?.stringValue, type == "chat.added" || type == "chat.removed" {
            object["kinds"] = .array([.string(type)])
        }
        return try Event(json: .object(object))
    }

    /// What `chatbridge rules test` prints for `event`: one result per rule, in order
    /// (disabled rules included, not evaluated), or one `stdout` result with no rule when
    /// there are no rules. Pure: sends nothing, runs nothing.
    ///
    /// - Parameters:
    ///   - configuration: the sinks, for what each would be sent.
    ///   - now: the `now` of conditions.
    package func testReport(for event: Event, configuration: ChatBridgeConfiguration, now: Date) -> [RuleTestResult] {
        if isEmpty {
            let sinks = [SinkConfiguration.standardOutputName]
            return [RuleTestResult(
                rule: nil, evaluation: .matched,
                sends: sinks.map { Self.preview(event: event, rule: nil, sink: $0, configuration: configuration) },
                throttle: nil)]
        }
        var evaluations: [String: RuleEvaluation.Outcome] = [:]
        for evaluation in evaluate(event, now: now) { evaluations[evaluation.rule] = evaluation.outcome }
        return rules.map { rule in
            let outcome = rule.isEnabled ? evaluations[rule.name] : nil
            let sends = outcome == .matched
                ? rule.sinks.map { Self.preview(event: event, rule: rule, sink: $0, configuration: configuration) }
                : []
            return RuleTestResult(rule: rule.name, evaluation: outcome, sends: sends, throttle: rule.throttle)
        }
    }

    /// What `sink` would be sent for `event` through `rule`, with the delivery code's
    /// own formats and templates: the rule's template, else the sink's, else the
    /// default summary (``DeliverySummary``).
    static func preview(event: Event, rule: Rule?, sink name: String, configuration: ChatBridgeConfiguration) -> SinkPreview {
        let delivered = event.json(rule: rule?.name)
        guard let sink = configuration.sinks[name] else { return SinkPreview(sink: name, content: .unknownSink) }
        switch sink.kind {
        case .standardOutput:
            return SinkPreview(sink: name, content: .line(delivered))
        case .webhook(let webhook):
            let format = webhook.format
            let text: String
            if !format.usesText {
                text = ""
            } else if let template = rule?.template ?? webhook.template.flatMap({ try? DeliveryTemplate($0) }) {
                text = template.render(delivered)
            } else {
                text = DeliverySummary.text(for: delivered)
            }
            return SinkPreview(sink: name, content: .webhook(format: format.rawValue, body: format.bodyValue(event: delivered, text: text)))
        case .http(let http):
            do {
                switch try HTTPRequestTemplate(http).render(delivered) {
                case .success(let request):
                    return SinkPreview(sink: name, content: .http(
                        method: request.method, contentType: request.contentType, bodyBytes: request.body.count, error: nil))
                case .failure(let failure):
                    return SinkPreview(sink: name, content: .http(
                        method: http.method, contentType: nil, bodyBytes: nil, error: "\(failure)"))
                }
            } catch {
                return SinkPreview(sink: name, content: .http(method: http.method, contentType: nil, bodyBytes: nil, error: "\(error)"))
            }
        case .exec(let exec):
            let argv: [String]
            switch exec.command {
            case .shell(let script):
                argv = [ExecSink.shellPath, "-c", script]
            case .arguments(let arguments):
                let request = DeliveryRequest(
                    eventID: event.id, event: event.json(), rule: rule?.name, sink: name, template: rule?.template)
                if let execSink = try? ExecSink(name: name, argv: arguments, environment: [:]) {
                    argv = execSink.argumentVector(for: request)
                } else {
                    argv = arguments
                }
            }
            return SinkPreview(sink: name, content: .exec(argv: argv, stdin: delivered))
        }
    }
}
