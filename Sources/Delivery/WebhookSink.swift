import AsyncHTTPClient
import ChatBridgeConfig
import Foundation
import NIOCore
import NIOHTTP1
import ChatBridgeCore
import Formats

/// The `webhook` sink: one `POST` per attempt (delivery.md, "webhook").
///
/// The request carries `Content-Type: application/json`, `User-Agent: chatbridge/VERSION`,
/// the Standard Webhooks headers (``WebhookSigner``) and the sink's extra headers. The
/// body is the event (`json`) or a chat message of TEXT (``DeliveryFormat``), where TEXT is
/// the rule's template, else the sink's, else ``DeliverySummary``, rendered with the event.
///
/// The outcome follows ``HTTPOutcome/classify(status:location:retryAfter:body:sink:now:)``:
/// 2xx delivered; 408, 425, 429, 5xx, timeouts and connection errors retried; other 4xx
/// and 3xx dead. At most 1 KiB of an error body is read.
///
/// The URL is a secret (incoming-webhook URLs are credentials): it appears in no error
/// and no log line. Messages say `sink team-slack: HTTP 500`, `sink team-slack: timed out
/// after 10 s`. Header values are secrets too (often tokens).
///
/// All webhook sinks share one `HTTPClient`, created by the runtime with redirects
/// disallowed (a POST must not be replayed elsewhere, and custom headers must not follow):
///
/// ```swift
/// let http = HTTPClient(eventLoopGroupProvider: .singleton,
///                       configuration: .init(redirectConfiguration: .disallow))
/// let sink = WebhookSink(name: "team-slack", url: Secret(slackURL), format: .slack,
///                        signer: WebhookSigner(secret: "whsec_..."), httpClient: http)
/// ```
package struct WebhookSink: DeliverySink {
    package let name: String
    private let url: Secret
    package let format: DeliveryFormat
    /// The sink's own template; a rule's template overrides it.
    package let template: DeliveryTemplate?
    private let signer: WebhookSigner?
    /// Extra headers, in order; values are secrets.
    private let headers: [(name: String, value: Secret)]
    package let timeout: Duration
    private let httpClient: HTTPClient
    package let userAgent: String
    private let now: @Sendable () -> Date

    /// Names whose value the sink sets itself; a configured header of the same name is
    /// ignored (a signature must match the body sent).
    static let reservedHeaderNames: Set<String> = [
        "content-type", "content-length", "host", "transfer-encoding", "connection",
        "webhook-id", "webhook-timestamp", "webhook-signature",
    ]

    package init(
        name: String,
        url: Secret,
        format: DeliveryFormat = .json,
        template: DeliveryTemplate? = nil,
        signer: WebhookSigner? = nil,
        headers: [(name: String, value: Secret)] = [],
        timeout: Duration = .seconds(10),
        httpClient: HTTPClient,
        userAgent: String = "chatbridge/\(ChatBridgeVersion.current)",
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.name = name
        self.url = url
        self.format = format
        self.template = template
        self.signer = signer
        self.headers = headers.filter { !Self.reservedHeaderNames.contains($0.name.lowercased()) }
        self.timeout = timeout
        self.httpClient = httpClient
        self.userAgent = userAgent
        self.now = now
    }

    /// A `json` body is the stored text with `rule` spliced in; the other formats render
    /// TEXT from the parsed event.
    package var readsParsedEvent: Bool { format.usesText }

    /// The body and the TEXT it carries, for an event as delivered (with `rule`): what
    /// the sink would send. `chatbridge rules test` shows it without sending.
    package func body(for request: DeliveryRequest) -> [UInt8] {
        guard format.usesText else { return request.eventWithRuleBytes }
        let event = request.eventWithRule
        let text = (request.template ?? template).map { $0.render(event) } ?? DeliverySummary.text(for: event)
        return format.body(event: event, text: text)
    }

    package func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome {
        await attempt(request).outcome
    }

    /// One attempt, with what was sent and what came back (`chatbridge sinks test`).
    package func attempt(_ request: DeliveryRequest) async -> HTTPAttempt {
        let body = body(for: request)
        var httpHeaders = HTTPHeaders()
        httpHeaders.add(name: "Content-Type", value: "application/json")
        httpHeaders.add(name: "User-Agent", value: userAgent)
        let id = WebhookSigner.messageID(eventID: request.eventID, rule: request.rule, sink: request.sink)
        for header in WebhookSigner.headers(id: id, timestamp: now(), body: body, signer: signer) {
            httpHeaders.add(name: header.name, value: header.value)
        }
        for header in headers {
            httpHeaders.replaceOrAdd(name: header.name, value: header.value.value)
        }

        let secretHeaderValues = headers.map(\.value.value)
        let sent = await HTTPExchange(sink: name, timeout: timeout, httpClient: httpClient, now: now)
            .send(method: .POST, url: url.value, headers: httpHeaders, body: body, secretHeaderValues: secretHeaderValues)
        let summary = HTTPAttempt.RequestSummary(
            method: "POST", url: url.value, headerNames: httpHeaders.map(\.name),
            contentType: "application/json", bodyBytes: body.count)
        return HTTPAttempt(
            request: summary, outcome: sent.outcome, status: sent.response?.status, responseBody: sent.response?.body ?? [],
            secretHeaderValues: secretHeaderValues)
    }
}
