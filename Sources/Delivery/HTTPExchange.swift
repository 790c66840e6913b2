import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ChatBridgeCore

/// One HTTP request of a sink, sent and classified: what the webhook and http sinks
/// share (timeouts, bounded response bodies, outcomes, failures in words without the URL).
///
/// The request goes through the runtime's one `HTTPClient`, made with redirects
/// disallowed. At most ``successBodyLimit`` bytes of a 2xx body and ``HTTPOutcome/keptBodyBytes``
/// of any other are read; a receiver that streams more has its connection closed.
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

    /// Sends `request` once: its outcome, and the response when there was one.
    func send(_ request: HTTPClientRequest) async -> (outcome: DeliveryOutcome, response: Response?) {
        do {
            guard let response = try await withTimeout(timeout, { try await self.exchange(request) }) else {
                throw TimedOut()
            }
            let outcome = HTTPOutcome.classify(
                status: response.status, location: response.location, retryAfter: response.retryAfter,
                body: (200..<300).contains(response.status) ? [] : response.body, sink: sink, now: now())
            return (outcome, response)
        } catch {
            return (HTTPOutcome.failure(describe(error), sink: sink), nil)
        }
    }

    private struct TimedOut: Error {}

    private func exchange(_ request: HTTPClientRequest) async throws -> Response {
        let response = try await httpClient.execute(request, deadline: .now() + .nanoseconds(timeout.clampedNanoseconds))
        let status = Int(response.status.code)
        let limit = (200..<300).contains(status) ? Self.successBodyLimit : HTTPOutcome.keptBodyBytes
        var body: [UInt8] = []
        do {
            for try await chunk in response.body {
                let room = limit - body.count
                chunk.withUnsafeReadableBytes { body.append(contentsOf: $0.prefix(room)) }
                if body.count >= limit { break }
            }
        } catch where !(error is CancellationError) && !Task.isCancelled {
            // The status says what happened; a body cut short must not hide it.
        }
        return Response(
            status: status,
            location: response.headers.first(name: "Location"),
            retryAfter: response.headers.first(name: "Retry-After"),
            body: Array(body.prefix(HTTPOutcome.keptBodyBytes)))
    }

    /// A failure in words that never contain the URL (nor its host or path).
    private func describe(_ error: any Error) -> String {
        if error is TimedOut { return "timed out after \(timeout.secondsText)" }
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
