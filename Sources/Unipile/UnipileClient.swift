import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ChatBridgeConfig
import ChatBridgeCore
import HTTPCollection
import UnipileScanner

/// Reads every page of Unipile's "List all chats" (`GET /api/v1/chats`) for one source.
///
/// A `Sendable` value over one shared `HTTPClient`: copies share the connection pool and
/// the ``RequestPacer``, so `max_requests_per_second` holds across all of a source's
/// requests. Each page is scanned (not decoded) and handed to the caller as it arrives;
/// pages are never accumulated, so memory stays at one page whatever the workspace size.
///
/// ```swift
/// let http = HTTPClient(eventLoopGroupProvider: .singleton,
///                       configuration: UnipileClient.makeHTTPClientConfiguration())
/// let client = UnipileClient(httpClient: http, baseURL: url, apiKey: key,
///                            requestTimeout: .seconds(30), maxRequestsPerSecond: 5)
/// do {
///     let summary = try await client.fetchAllChats(ChatListQuery(pageSize: 250), fingerprintSeed: seed) { page in
///         for item in page.items { /* compare item.fingerprint, copy page.rawData(of: item) */ }
///     }
/// } catch {
///     // error is a PollFailure: which page, and what went wrong
/// }
/// ```
///
/// The shared `HTTPClient` must not follow redirects (``makeHTTPClientConfiguration()``):
/// AsyncHTTPClient forwards custom headers such as `X-API-KEY` to the redirect target.
package struct UnipileClient: Sendable {
    /// The largest page body read before the poll fails (64 MiB): a hostile or broken
    /// server cannot make chatbridge allocate without bound.
    package static let defaultMaxPageBytes = 64 << 20
    /// The most pages one poll reads before it fails as a cursor that never ends.
    package static let defaultMaxPages = 1_000_000
    /// The most of an error body that is read; the rest is dropped.
    static let errorBodyLimit = 64 << 10
    /// Sent as `User-Agent: chatbridge/<version>`.
    package static let version = ChatBridgeVersion.current

    package let httpClient: HTTPClient
    /// The base URL as configured, e.g. `https://api1.unipile.com:13111`.
    package let baseURL: URL
    /// `baseURL` with `/api/v1/chats` appended, or `nil` when `baseURL` is not an http(s)
    /// URL with a host.
    package let chatsURL: String?
    /// Sent as `X-API-KEY`; never printed.
    package let apiKey: Secret
    /// How long one request may take, from sending to the last byte of its body.
    package let requestTimeout: Duration
    /// Paces the requests of the source.
    package let pacer: RequestPacer
    package let userAgent: String
    package var maxPageBytes: Int
    package var maxPages: Int
    /// Told the HTTP status of every answer (`chatbridge_unipile_requests_total`).
    package var responseObserver: (@Sendable (_ status: Int) -> Void)?

    /// A client with its own pacer; copies of it share that pacer.
    package init(
        httpClient: HTTPClient,
        baseURL: URL,
        apiKey: Secret,
        requestTimeout: Duration = .seconds(30),
        maxRequestsPerSecond: Double = 0,
        userAgent: String = "chatbridge/\(UnipileClient.version)",
        maxPageBytes: Int = UnipileClient.defaultMaxPageBytes,
        maxPages: Int = UnipileClient.defaultMaxPages
    ) {
        self.init(
            httpClient: httpClient, baseURL: baseURL, apiKey: apiKey, requestTimeout: requestTimeout,
            pacer: RequestPacer(maxRequestsPerSecond: maxRequestsPerSecond), userAgent: userAgent,
            maxPageBytes: maxPageBytes, maxPages: maxPages)
    }

    /// A client that paces its requests with `pacer` (shared with whoever else uses it).
    package init(
        httpClient: HTTPClient,
        baseURL: URL,
        apiKey: Secret,
        requestTimeout: Duration = .seconds(30),
        pacer: RequestPacer,
        userAgent: String = "chatbridge/\(UnipileClient.version)",
        maxPageBytes: Int = UnipileClient.defaultMaxPageBytes,
        maxPages: Int = UnipileClient.defaultMaxPages
    ) {
        self.httpClient = httpClient
        self.baseURL = baseURL
        self.chatsURL = Self.chatsURL(for: baseURL)
        self.apiKey = apiKey
        self.requestTimeout = requestTimeout
        self.pacer = pacer
        self.userAgent = userAgent
        self.maxPageBytes = maxPageBytes
        self.maxPages = maxPages
    }

    /// The client of a configured source: its URL, key, timeout and rate limit.
    package init(source: SourceConfiguration, httpClient: HTTPClient) {
        self.init(
            httpClient: httpClient, baseURL: source.url, apiKey: source.apiKey, requestTimeout: source.timeout,
            maxRequestsPerSecond: source.maxRequestsPerSecond)
    }

    /// The `HTTPClient` configuration the shared client should use: no redirects (they
    /// would carry the API key to another host; a 3xx fails the poll instead).
    package static func makeHTTPClientConfiguration() -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        // A refused connection or an unreachable host fails the attempt at once, with its
        // cause; the poll or delivery is retried on chatbridge's own schedule instead of
        // AsyncHTTPClient retrying the connection until the request's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        // No tracing: nothing bootstraps a tracer, and AsyncHTTPClient would otherwise
        // start a (no-op) span, with its dynamic casts, for every page and webhook.
        configuration.tracing.tracer = nil
        return configuration
    }

    /// `baseURL` with `/api/v1/chats` appended (a trailing slash tolerated, query and
    /// fragment dropped), or `nil` when it is not an http(s) URL with a host.
    package static func chatsURL(for baseURL: URL) -> String? {
        guard var components = URLComponents(url: baseURL, resolvingAgainstBaseURL: false),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.percentEncodedHost, !host.isEmpty
        else { return nil }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        components.percentEncodedPath = path + "/api/v1/chats"
        components.query = nil
        components.fragment = nil
        return components.string
    }

    /// The URL of one page request.
    package func pageURL(_ query: ChatListQuery, cursor: String?) -> String? {
        chatsURL.map { $0 + "?" + query.percentEncodedQuery(cursor: cursor) }
    }

    // MARK: Polling

    /// Reads every page of the chat list, following `cursor` until it is `null`, and
    /// hands each page to `onPage` as soon as it is scanned.
    ///
    /// The poll fails at the first page that fails: an error status, a timeout, a
    /// transport error, a body that is not a valid page, a cursor that repeats (or more
    /// than ``maxPages`` pages), or an error thrown by `onPage`. A failed poll is
    /// incomplete: whatever `onPage` saw must not become the stored snapshot.
    ///
    /// - Parameters:
    ///   - query: page size and filters.
    ///   - fingerprintSeed: the store's seed for ``ChatFingerprint``.
    ///   - recognising: the fingerprints of stored chats, when there are some: an item
    ///     with one of them is only located and fingerprinted (``ScannedPage/recognised``);
    ///     see ``ChatPageScanner/scan(_:fingerprintSeed:recognising:)``.
    ///   - onPage: called once per page, in order, before the next page is requested.
    ///     A `PollFailure` it throws is passed through; a `CancellationError` becomes
    ///     ``PollFailure/cancelled``; anything else ``PollFailure/pageHandler(_:page:)``.
    /// - Returns: how many pages, items and bytes the complete poll read.
    package func fetchAllChats(
        _ query: ChatListQuery,
        fingerprintSeed: UInt64,
        recognising: (([UInt64]) -> [Bool])? = nil,
        onPage: (ChatPage) async throws -> Void
    ) async throws(PollFailure) -> PollSummary {
        var summary = PollSummary(pages: 0, items: 0, bytes: 0)
        var cursor: String?
        var seenCursors: Set<String> = []
        while true {
            let pageNumber = summary.pages + 1
            if Task.isCancelled { throw .cancelled }
            guard let url = pageURL(query, cursor: cursor) else {
                throw .transport("the base URL is not an http(s) URL with a host", page: pageNumber)
            }
            let body = try await fetchPageBody(url: url, page: pageNumber)
            let scanned: ScannedPage
            do {
                scanned = try ChatPageScanner.scan(body, fingerprintSeed: fingerprintSeed, recognising: recognising)
            } catch {
                throw .malformed(error.description, page: pageNumber)
            }
            summary.pages = pageNumber
            summary.items += scanned.itemCount
            summary.bytes += body.count

            do {
                try await onPage(ChatPage(number: pageNumber, body: body, scanned: scanned))
            } catch let failure as PollFailure {
                throw failure
            } catch is CancellationError {
                throw .cancelled
            } catch {
                throw .pageHandler(error, page: pageNumber)
            }

            guard let next = scanned.cursor else { return summary }
            guard seenCursors.insert(next).inserted else {
                throw .malformed("the API returned a cursor it had already returned in this poll (paging would never end)", page: pageNumber)
            }
            guard pageNumber < maxPages else {
                throw .malformed("more than \(maxPages) pages in one poll (the cursor does not end)", page: pageNumber)
            }
            cursor = next
        }
    }

    /// Fetches one page: waits for the pacer, then sends the request and reads the whole
    /// body within ``requestTimeout`` (one deadline for the head and the body).
    func fetchPageBody(url: String, page: Int) async throws(PollFailure) -> [UInt8] {
        do {
            try await pacer.waitForTurn()
        } catch {
            throw .cancelled
        }

        let answer: CollectedResponse
        do {
            let request = try makeRequest(url: url)
            let observer = responseObserver
            let pageLimit = maxPageBytes
            answer = try await ResponseCollector.response(
                to: request, client: httpClient, deadline: .now() + TimeAmount.nanoseconds(requestTimeout.clampedNanoseconds),
                limit: { status in
                    (200..<300).contains(status) ? .refuseLonger(than: pageLimit) : .keepPrefix(bytes: Self.errorBodyLimit)
                },
                onHead: { observer?($0) })
        } catch {
            throw classify(error, page: page)
        }
        if answer.isSuccess {
            guard answer.bodyIsComplete else {
                throw .transport("the connection closed before the page's end", page: page)
            }
            return answer.body
        }
        let retryAfter = answer.headers.first(name: "Retry-After").flatMap { Self.retryAfter($0, now: Date()) }
        throw .api(UnipileAPIError(status: answer.status, body: answer.body, retryAfter: retryAfter).redacting(apiKey), page: page)
    }

    // MARK: One exchange

    private func makeRequest(url: String) throws -> HTTPClient.Request {
        var headers = HTTPHeaders()
        headers.add(name: "X-API-KEY", value: apiKey.value)
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: userAgent)
        return try HTTPClient.Request(url: url, method: .GET, headers: headers)
    }

    // MARK: Helpers

    private func classify(_ error: any Error, page: Int) -> PollFailure {
        if Task.isCancelled || error is CancellationError { return .cancelled }
        if let error = error as? ResponseBodyTooLarge {
            return .malformed("the page body is larger than \(Self.byteCount(error.limit))", page: page)
        }
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout { return .timeout(page: page) }
            if error == .cancelled { return .cancelled }
        }
        if let endpoint = chatsURL.flatMap(TransportFailure.endpoint(of:)),
           let text = TransportFailure.describe(error, endpoint: endpoint) {
            return .transport(text, page: page)
        }
        return .transport(redacted(String(describing: error)), page: page)
    }

    /// `text` on one line, without the API key.
    private func redacted(_ text: String) -> String {
        var text = text
        if !apiKey.value.isEmpty {
            text = text.replacingOccurrences(of: apiKey.value, with: apiKey.description)
        }
        return UnipileAPIError.printable(text)
    }


    /// The wait a `Retry-After` header asks for (seconds or an HTTP-date, through the one
    /// ``RetryAfter`` parser), at most a day.
    static func retryAfter(_ value: String, now: Date) -> Duration? {
        RetryAfter.delay(value, now: now, atMost: .seconds(86_400))
    }

    static func byteCount(_ bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}
