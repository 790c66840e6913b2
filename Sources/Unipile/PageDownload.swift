import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// Reads one answer of the API into memory on the event loop, and hands it over once:
/// the head, and the body up to a limit.
///
/// A page of 250 chats is about 130 KB that arrives in a few dozen reads. Reading it
/// through an async sequence resumes the poll's task once per read, each a hop between
/// threads; this delegate collects the reads where they arrive, so that the poll's task
/// resumes once per page. The request's deadline (``UnipileClient/requestTimeout``)
/// covers the whole exchange, body included: AsyncHTTPClient fails the task when it
/// passes, whatever state the answer is in.
///
/// - A 2xx body longer than `pageLimit` fails the request with ``PageTooLarge``.
/// - Any other status keeps the first `errorLimit` bytes of its body and ends the
///   exchange there (the status says enough; a hostile error body is not read on); a
///   connection that breaks during an error body still gives the status.
final class PageDownload: HTTPClientResponseDelegate {
    /// The head and the body read, as the poll receives them.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// The 2xx body is larger than the limit.
    struct PageTooLarge: Error {
        var limit: Int
    }

    /// The error body reached its limit: the exchange ends with what was read.
    private struct EnoughOfTheErrorBody: Error {}

    private let pageLimit: Int
    private let errorLimit: Int
    private let onHead: @Sendable (_ status: Int) -> Void
    private let state = Mutex<Answer?>(nil)

    /// - Parameters:
    ///   - onHead: told the status as soon as the head arrives (metrics).
    init(pageLimit: Int, errorLimit: Int, onHead: @escaping @Sendable (_ status: Int) -> Void) {
        self.pageLimit = pageLimit
        self.errorLimit = errorLimit
        self.onHead = onHead
    }

    func didReceiveHead(task: HTTPClient.Task<Answer>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        let status = Int(head.status.code)
        onHead(status)
        let isPage = (200..<300).contains(status)
        var body: [UInt8] = []
        if let declared = head.headers.first(name: "Content-Length").flatMap(Int.init), declared >= 0 {
            if isPage, declared > pageLimit {
                return task.eventLoop.makeFailedFuture(PageTooLarge(limit: pageLimit))
            }
            body.reserveCapacity(min(declared, isPage ? pageLimit : errorLimit))
        }
        state.withLock { $0 = Answer(status: status, headers: head.headers, body: body) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Answer>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let outcome: (any Error)? = state.withLock { answer in
            guard answer != nil else { return nil }
            let isPage = (200..<300).contains(answer!.status)
            let limit = isPage ? pageLimit : errorLimit
            let room = limit - answer!.body.count
            if buffer.readableBytes > room {
                guard !isPage else { return PageTooLarge(limit: limit) }
                buffer.withUnsafeReadableBytes { answer!.body.append(contentsOf: $0.prefix(room)) }
                return EnoughOfTheErrorBody()
            }
            buffer.withUnsafeReadableBytes { answer!.body.append(contentsOf: $0) }
            return nil
        }
        if let outcome { return task.eventLoop.makeFailedFuture(outcome) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Answer>) throws -> Answer {
        guard let answer = state.withLock({ $0 }) else { throw HTTPClientError.remoteConnectionClosed }
        return answer
    }

    /// Sends `request` through `client` and waits for the answer: the whole exchange must
    /// end by `deadline`. Cancelling the calling task cancels the request.
    static func answer(
        to request: HTTPClient.Request, client: HTTPClient, deadline: NIODeadline, pageLimit: Int, errorLimit: Int,
        onHead: @escaping @Sendable (_ status: Int) -> Void
    ) async throws -> Answer {
        let delegate = PageDownload(pageLimit: pageLimit, errorLimit: errorLimit, onHead: onHead)
        let task = client.execute(request: request, delegate: delegate, deadline: deadline)
        do {
            return try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch {
            // An error status with the start of its body (all of it, or as much as came
            // before the connection broke): the status says enough, a broken error body
            // must not hide it.
            if !Task.isCancelled, let answer = delegate.state.withLock({ $0 }), !(200..<300).contains(answer.status) {
                return answer
            }
            throw error
        }
    }
}
