import AsyncHTTPClient
import ChatBridgeConfig
import ChatBridgeCore
import Foundation
import Formats
import NIOCore
import NIOHTTP1

/// The `http` sink: any HTTP API, with method, URL, headers and body from templates
/// (``HTTPRequestTemplate``), for services that want their own request shape (ntfy,
/// Telegram, PagerDuty, Pushover, Matrix, Home Assistant... see docs/sinks.md).
///
/// Everything of a webhook holds: one request per attempt and no retry of its own, the
/// outcome from ``HTTPOutcome`` (2xx delivered; 408, 425, 429, 5xx, timeouts retried with
/// `Retry-After`; other 4xx and every 3xx dead: redirects are not followed), bounded
/// response bodies, Standard Webhooks signatures when secrets are set, and the URL and
/// header values kept out of every message. An event whose body does not render to
/// valid JSON (with a JSON content type) is dead at once: a malformed request is never
/// sent.
///
/// ```swift
/// let sink = try HTTPSink(name: "phone", configuration: HTTPSinkConfiguration(
///     url: Secret("https://ntfy.sh/alerts"), contentType: "text/plain", body: "{{summary}}"),
///     httpClient: http)
/// let outcome = await sink.deliver(request)
/// ```
package struct HTTPSink: DeliverySink {
    package let name: String
    private let template: HTTPRequestTemplate
    private let signer: WebhookSigner?
    package let timeout: Duration
    private let httpClient: HTTPClient
    package let userAgent: String
    private let now: @Sendable () -> Date

    /// Header names the sink sets itself; configured headers of these names are dropped.
    static let reservedHeaderNames: Set<String> = WebhookSink.reservedHeaderNames

    /// - Throws: ``HTTPTemplateError`` when a template does not parse.
    package init(
        name: String,
        configuration: HTTPSinkConfiguration,
        httpClient: HTTPClient,
        userAgent: String = "chatbridge/\(ChatBridgeVersion.current)",
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(HTTPTemplateError) {
        self.name = name
        self.template = try HTTPRequestTemplate(configuration)
        self.signer = configuration.secrets.isEmpty ? nil : WebhookSigner(secrets: configuration.secrets.map(\.value))
        self.timeout = configuration.timeout
        self.httpClient = httpClient
        self.userAgent = userAgent
        self.now = now
    }

    package func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome {
        await attempt(request).outcome
    }

    /// The request for `request`'s event, or why there is none.
    package func render(_ request: DeliveryRequest) -> Result<RenderedHTTPRequest, HTTPRenderError> {
        template.render(request.eventWithRule)
    }

    /// One attempt, with what was sent and what came back (`chatbridge sinks test`).
    package func attempt(_ request: DeliveryRequest) async -> HTTPAttempt {
        let rendered: RenderedHTTPRequest
        switch render(request) {
        case .success(let value):
            rendered = value
        case .failure(let failure):
            let summary = HTTPAttempt.RequestSummary(
                method: template.method, url: nil, headerNames: [], contentType: template.contentType, bodyBytes: 0)
            return HTTPAttempt(request: summary, outcome: .dead(status: nil, error: "sink \(name): \(failure)"), status: nil, responseBody: [])
        }
        var httpHeaders = HTTPHeaders()
        if let contentType = rendered.contentType { httpHeaders.add(name: "Content-Type", value: contentType) }
        httpHeaders.add(name: "User-Agent", value: userAgent)
        let id = WebhookSigner.messageID(eventID: request.eventID, rule: request.rule, sink: request.sink)
        for header in WebhookSigner.headers(id: id, timestamp: now(), body: rendered.body, signer: signer) {
            httpHeaders.add(name: header.name, value: header.value)
        }
        for header in rendered.headers where !Self.reservedHeaderNames.contains(header.name.lowercased()) {
            httpHeaders.replaceOrAdd(name: header.name, value: header.value)
        }

        let headerValues = rendered.headers.map(\.value)
        let sent = await HTTPExchange(sink: name, timeout: timeout, httpClient: httpClient, now: now).send(
            method: HTTPMethod(rawValue: rendered.method), url: rendered.url, headers: httpHeaders,
            body: rendered.contentType != nil ? rendered.body : nil, secretHeaderValues: headerValues)
        let summary = HTTPAttempt.RequestSummary(
            method: rendered.method, url: rendered.url, headerNames: httpHeaders.map(\.name),
            contentType: rendered.contentType, bodyBytes: rendered.body.count)
        return HTTPAttempt(
            request: summary, outcome: sent.outcome, status: sent.response?.status, responseBody: sent.response?.body ?? [],
            secretHeaderValues: headerValues)
    }
}

/// One attempt of an HTTP sink as `chatbridge sinks test` shows it: the request without
/// its secrets, the outcome, and the response.
package struct HTTPAttempt: Sendable {
    /// What was sent, safe to print.
    package struct RequestSummary: Sendable, Hashable {
        package var method: String
        /// Only ``origin`` of it is ever shown.
        var url: String?
        /// The names of the headers sent (values are secrets).
        package var headerNames: [String]
        package var contentType: String?
        package var bodyBytes: Int

        /// `https://host[:port]`: where the request went, without the path and query,
        /// which often hold tokens (Telegram's `/botTOKEN/`, Home Assistant's webhook id).
        package var origin: String? {
            guard let url, let components = URLComponents(string: url), let scheme = components.scheme,
                  let host = components.host
            else { return nil }
            return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
        }
    }

    package var request: RequestSummary
    package var outcome: DeliveryOutcome
    /// The HTTP status, when a response came.
    package var status: Int?
    /// The first KiB of the response body.
    package var responseBody: [UInt8]
    /// The values of the headers the sink was configured with: with the URL, what a
    /// receiver may echo of the request (``HTTPExchange/echoable(url:headerValues:)``).
    package var secretHeaderValues: [String] = []

    /// The response body's start on one line, what it echoes of the request hidden. Made
    /// when asked (`sinks test`), not for every delivery.
    package var responseExcerpt: String {
        HTTPOutcome.excerpt(
            responseBody, hiding: request.url.map { HTTPExchange.echoable(url: $0, headerValues: secretHeaderValues) } ?? [])
    }
}

/// A sink that makes HTTP requests and can show one attempt in full.
package protocol HTTPAttemptingSink: DeliverySink {
    func attempt(_ request: DeliveryRequest) async -> HTTPAttempt
}

extension HTTPSink: HTTPAttemptingSink {}
extension WebhookSink: HTTPAttemptingSink {}
