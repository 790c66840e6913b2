import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// An answer read into memory: the head, and the body up to its limit.
package struct CollectedResponse: Sendable {
    package var status: Int
    package var headers: HTTPHeaders
    /// The body read, at most the limit for the status.
    package var body: [UInt8]
    /// Whether ``body`` is the whole body: `false` when the limit ended the exchange, or
    /// the connection broke after the head.
    package var bodyIsComplete: Bool

    package var isSuccess: Bool { (200..<300).contains(status) }
}

/// What a collector does with a body, by status.
package enum ResponseBodyLimit: Sendable {
    /// Keep the first `bytes` bytes and end the exchange there: the status says enough.
    case keepPrefix(bytes: Int)
    /// A body longer than `bytes` fails the exchange with ``ResponseBodyTooLarge``.
    case refuseLonger(than: Int)

    var bytes: Int {
        switch self {
        case .keepPrefix(let bytes), .refuseLonger(let bytes): bytes
        }
    }
}

/// The body is longer than a ``ResponseBodyLimit/refuseLonger(than:)`` limit.
package struct ResponseBodyTooLarge: Error, Sendable {
    package var limit: Int
}

/// Reads one answer of the shared `HTTPClient` on the event loop where it arrives, and
/// hands it over once: the head, and the body up to a limit per status.
///
/// The poll's pages (about 130 KB that arrive in a few dozen reads) and the sinks' answers
/// both go through it. Reading through an async sequence would resume the caller's task
/// once per read, each a hop between threads; collecting where the reads arrive resumes it
/// once per exchange. The deadline covers the whole exchange, body included: AsyncHTTPClient
/// fails the task when it passes, whatever state the answer is in, so no timer task is
/// needed beside it.
///
/// ```swift
/// let answer = try await ResponseCollector.response(
///     to: request, client: http, deadline: .now() + .seconds(30),
///     limit: { status in (200..<300).contains(status) ? .refuseLonger(than: 64 << 20) : .keepPrefix(bytes: 64 << 10) })
/// ```
///
/// When the head came and the body then ended early (its limit, or a connection that
/// broke), the answer is returned with ``CollectedResponse/bodyIsComplete`` `false`: a body
/// cut short must not hide the status. A deadline that passes, or a cancelled task, is an
/// error whatever came before.
package final class ResponseCollector: HTTPClientResponseDelegate {
    /// The body reached a ``ResponseBodyLimit/keepPrefix(bytes:)`` limit.
    private struct EnoughOfTheBody: Error {}

    private let limit: @Sendable (_ status: Int) -> ResponseBodyLimit
    private let onHead: @Sendable (_ status: Int) -> Void
    private let state = Mutex<(response: CollectedResponse, limit: ResponseBodyLimit)?>(nil)

    private init(
        limit: @escaping @Sendable (_ status: Int) -> ResponseBodyLimit, onHead: @escaping @Sendable (_ status: Int) -> Void
    ) {
        self.limit = limit
        self.onHead = onHead
    }

    package func didReceiveHead(task: HTTPClient.Task<CollectedResponse>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let status = Int(head.status.code)
        onHead(status)
        let limit = limit(status)
        var body: [UInt8] = []
        if let declared = head.headers.first(name: "Content-Length").flatMap(Int.init), declared >= 0 {
            if case .refuseLonger(let bytes) = limit, declared > bytes {
                return task.eventLoop.makeFailedFuture(ResponseBodyTooLarge(limit: bytes))
            }
            body.reserveCapacity(min(declared, limit.bytes))
        }
        let response = CollectedResponse(status: status, headers: head.headers, body: body, bodyIsComplete: false)
        state.withLock { $0 = (response, limit) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    package func didReceiveBodyPart(task: HTTPClient.Task<CollectedResponse>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let failure: (any Error)? = state.withLock { state in
            guard state != nil else { return nil }
            let room = state!.limit.bytes - state!.response.body.count
            if buffer.readableBytes > room {
                if case .refuseLonger(let bytes) = state!.limit { return ResponseBodyTooLarge(limit: bytes) }
                buffer.withUnsafeReadableBytes { state!.response.body.append(contentsOf: $0.prefix(room)) }
                return EnoughOfTheBody()
            }
            buffer.withUnsafeReadableBytes { state!.response.body.append(contentsOf: $0) }
            return nil
        }
        if let failure { return task.eventLoop.makeFailedFuture(failure) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    package func didFinishRequest(task: HTTPClient.Task<CollectedResponse>) throws -> CollectedResponse {
        guard var response = state.withLock({ $0?.response }) else { throw HTTPClientError.remoteConnectionClosed }
        response.bodyIsComplete = true
        return response
    }

    /// Sends `request` through `client` and waits for the answer; the whole exchange must
    /// end by `deadline`. Cancelling the calling task cancels the request.
    ///
    /// - Parameters:
    ///   - limit: how much of the body to read, by status.
    ///   - onHead: told the status as soon as the head arrives (metrics).
    package static func response(
        to request: HTTPClient.Request, client: HTTPClient, deadline: NIODeadline,
        limit: @escaping @Sendable (_ status: Int) -> ResponseBodyLimit,
        onHead: @escaping @Sendable (_ status: Int) -> Void = { _ in }
    ) async throws -> CollectedResponse {
        let collector = ResponseCollector(limit: limit, onHead: onHead)
        let task = client.execute(request: request, delegate: collector, deadline: deadline)
        do {
            return try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch let error as ResponseBodyTooLarge {
            throw error
        } catch {
            let timedOut = (error as? HTTPClientError).map { $0 == .deadlineExceeded || $0 == .readTimeout } ?? false
            if !timedOut, !Task.isCancelled, let response = collector.state.withLock({ $0?.response }) {
                return response
            }
            throw error
        }
    }
}
