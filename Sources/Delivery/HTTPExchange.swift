import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ChatBridgeCore
import Synchronization

/// One HTTP request of a sink, sent and classified: what the webhook and http sinks
/// share (timeouts, bounded response bodies, outcomes, failures in words without the URL).
///
/// The request goes through the runtime's one `HTTPClient`, made with redirects
/// disallowed. At most ``successBodyLimit`` bytes of a 2xx body and ``HTTPOutcome/keptBodyBytes``
/// of any other are read; a receiver that sends more has the exchange ended there. The
/// response is collected on the event loop where it arrives (``ResponseCollector``), and
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
    func send(method: HTTPMethod, url: String, headers: HTTPHeaders, body: [UInt8]?) async -> (outcome: DeliveryOutcome, response: Response?) {
        do {
            let request = try HTTPClient.Request(
                url: url, method: method, headers: headers, body: body.map { .bytes($0) })
            let deadline = NIODeadline.now() + .nanoseconds(timeout.clampedNanoseconds)
            var response = try await ResponseCollector.response(to: request, client: httpClient, deadline: deadline)
            response.body = Array(response.body.prefix(HTTPOutcome.keptBodyBytes))
            let outcome = HTTPOutcome.classify(
                status: response.status, location: response.location, retryAfter: response.retryAfter,
                body: (200..<300).contains(response.status) ? [] : response.body, sink: sink, now: now())
            return (outcome, response)
        } catch {
            return (HTTPOutcome.failure(describe(error), sink: sink), nil)
        }
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

/// Collects one response of a sink's request on the event loop: the head, and the body up
/// to its limit (``HTTPExchange/successBodyLimit`` for a 2xx, ``HTTPOutcome/keptBodyBytes``
/// otherwise), where the exchange then ends: the status says what happened.
///
/// A connection that breaks in the body still gives the status (a body cut short must not
/// hide it); a deadline that passes in the body is a timeout.
final class ResponseCollector: HTTPClientResponseDelegate {
    /// The body reached its limit: the exchange ends with what was read.
    private struct EnoughOfTheBody: Error {}

    private let state = Mutex<HTTPExchange.Response?>(nil)

    func didReceiveHead(task: HTTPClient.Task<HTTPExchange.Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLock {
            $0 = HTTPExchange.Response(
                status: Int(head.status.code), location: head.headers.first(name: "Location"),
                retryAfter: head.headers.first(name: "Retry-After"), body: [])
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<HTTPExchange.Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let enough = state.withLock { response -> Bool in
            guard response != nil else { return false }
            let limit = (200..<300).contains(response!.status) ? HTTPExchange.successBodyLimit : HTTPOutcome.keptBodyBytes
            let room = limit - response!.body.count
            buffer.withUnsafeReadableBytes { response!.body.append(contentsOf: $0.prefix(room)) }
            return buffer.readableBytes >= room
        }
        if enough { return task.eventLoop.makeFailedFuture(EnoughOfTheBody()) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<HTTPExchange.Response>) throws -> HTTPExchange.Response {
        guard let response = state.withLock({ $0 }) else { throw HTTPClientError.remoteConnectionClosed }
        return response
    }

    /// Sends `request` and waits for its response; the whole exchange must end by
    /// `deadline`. Cancelling the calling task cancels the request.
    static func response(
        to request: HTTPClient.Request, client: HTTPClient, deadline: NIODeadline
    ) async throws -> HTTPExchange.Response {
        let collector = ResponseCollector()
        let task = client.execute(request: request, delegate: collector, deadline: deadline)
        do {
            return try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            // The head came and the body ended early (its limit, or a broken connection):
            // the status stands. Not when the deadline passed or the attempt was cancelled.
            let timedOut = (error as? HTTPClientError).map { $0 == .deadlineExceeded || $0 == .readTimeout } ?? false
            if !timedOut, !Task.isCancelled, let response = collector.state.withLock({ $0 }) { return response }
            throw error
        }
    }
}
