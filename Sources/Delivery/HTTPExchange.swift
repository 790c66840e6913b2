import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ChatBridgeCore
import HTTPCollection

/// One HTTP request of a sink, sent and classified: what the webhook and http sinks
/// share (timeouts, bounded response bodies, outcomes, failures in words without the URL).
///
/// The request goes through the runtime's one `HTTPClient`, made with redirects
/// disallowed. At most ``successBodyLimit`` bytes of a 2xx body and ``HTTPOutcome/keptBodyBytes``
/// of any other are read; a receiver that sends more has the exchange ended there. The
/// response is collected on the event loop where it arrives (`HTTPCollection`'s
/// `ResponseCollector`, which the poll's pages go through too), and
/// the sink's timeout is the request's deadline, which covers the whole exchange, body
/// included: an attempt resumes its task once, with no timer task of its own.
struct HTTPExchange: Sendable {
    /// The sink's name, for messages.
    let sink: String
    let timeout: Duration
    let httpClient: HTTPClient
    let now: @Sendable () -> Date

    /// The most of a 2xx body that is read.
    static let successBodyLimit = 64 << 10

    /// What came back, for `chatbridge sinks test`.
    struct Response: Sendable {
        var status: Int
        var location: String?
        var retryAfter: String?
        /// The first bytes of the body (at most 1 KiB kept).
        var body: [UInt8]
    }

    /// Sends one request: its outcome, and the response when there was one.
    ///
    /// - Parameter secretHeaderValues: the values of the headers the sink was configured
    ///   with (tokens), hidden in a failure's error with the URL's path and query.
    func send(
        method: HTTPMethod, url: String, headers: HTTPHeaders, body: [UInt8]?, secretHeaderValues: [String]
    ) async -> (outcome: DeliveryOutcome, response: Response?) {
        do {
            let request = try HTTPClient.Request(
                url: url, method: method, headers: headers, body: body.map { .bytes($0) })
            let deadline = NIODeadline.now() + .nanoseconds(timeout.clampedNanoseconds)
            // A 2xx body is read up to its limit (the receiver took the request: it counts as
            // delivered), any other up to what is kept of it; the exchange ends there.
            let collected = try await ResponseCollector.response(
                to: request, client: httpClient, deadline: deadline,
                limit: { status in .keepPrefix(bytes: (200..<300).contains(status) ? Self.successBodyLimit : HTTPOutcome.keptBodyBytes) })
            let response = Response(
                status: collected.status, location: collected.headers.first(name: "Location"),
                retryAfter: collected.headers.first(name: "Retry-After"),
                body: Array(collected.body.prefix(HTTPOutcome.keptBodyBytes)))
            let outcome = HTTPOutcome.classify(
                status: response.status, location: response.location, retryAfter: response.retryAfter,
                body: (200..<300).contains(response.status) ? [] : response.body, sink: sink, now: now(),
                hiding: (200..<300).contains(response.status) ? [] : Self.echoable(url: url, headerValues: secretHeaderValues),
                requestURL: url)
            return (outcome, response)
        } catch {
            return (HTTPOutcome.failure(describe(error), sink: sink), nil)
        }
    }

    /// What of a request a receiver may echo in an error body, as it was sent and
    /// percent-decoded: the URL's path and query (an incoming-webhook URL carries its token
    /// there), their segments and values of 8 characters or more, and the configured
    /// header values with their words of 8 or more (`TOKEN` of `Bearer TOKEN`).
    static func echoable(url: String, headerValues: [String]) -> [String] {
        var parts = Set<String>()
        func add<S: StringProtocol>(_ part: S, minimum: Int) {
            guard part.count >= minimum else { return }
            parts.insert(String(part))
            if let decoded = String(part).removingPercentEncoding, decoded != String(part) { parts.insert(decoded) }
        }
        for value in headerValues {
            add(value, minimum: 4)
            for word in value.split(separator: " ") { add(word, minimum: 8) }
        }
        if let components = URLComponents(string: url) {
            add(components.percentEncodedPath, minimum: 2)
            for segment in components.percentEncodedPath.split(separator: "/") { add(segment, minimum: 8) }
            if let query = components.percentEncodedQuery {
                add(query, minimum: 2)
                for item in query.split(separator: "&") {
                    add(item, minimum: 8)
                    if let value = item.split(separator: "=", maxSplits: 1).dropFirst().first { add(value, minimum: 8) }
                }
            }
        }
        return parts.sorted { $0.count > $1.count || ($0.count == $1.count && $0 < $1) }
    }

    /// A failure in words that never contain the URL (nor its host or path).
    private func describe(_ error: any Error) -> String {
        if error is CancellationError || Task.isCancelled { return "cancelled" }
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .writeTimeout {
                return "timed out after \(timeout.secondsText)"
            }
            if error == .connectTimeout { return "timed out connecting" }
            if error == .tlsHandshakeTimeout { return "timed out in the TLS handshake" }
            if error == .remoteConnectionClosed { return "the receiver closed the connection" }
            if error == .cancelled { return "cancelled" }
            if error == .invalidURL || error == .emptyHost || error == .emptyScheme {
                return "the configured URL is not a valid http(s) URL"
            }
        }
        // The whole URL is a secret (incoming-webhook URLs carry their credentials, and
        // its host says whom a bridge notifies): the sink's name says which receiver.
        if let text = TransportFailure.describe(error, endpoint: "the receiver") { return text }
        // The type's name only: a description can hold the host, the path or the query.
        return "request failed (\(type(of: error)))"
    }
}
