import Foundation

/// One page of "List all chats" as the poll hands it over: the body exactly as received
/// and what ``ChatPageScanner`` found in it.
///
/// The items are not decoded. Compare ``ScannedItem/digest`` with the stored digest and
/// decode or copy out only what changed:
///
/// ```swift
/// try await client.fetchAllChats(query, digestSeed: seed) { page in
///     for item in page.items where stored[item.id]?.digest != item.digest {
///         let raw = page.rawData(of: item)        // to store
///         let chat = try page.decode(item)        // to diff
///     }
/// }
/// ```
public struct ChatPage: Sendable {
    /// The page's position in the poll, counted from 1.
    public let number: Int
    /// The response body as received.
    public let body: [UInt8]
    /// The items and cursor found in ``body``.
    public let scanned: ScannedPage

    public init(number: Int, body: [UInt8], scanned: ScannedPage) {
        self.number = number
        self.body = body
        self.scanned = scanned
    }

    /// The page's chats, in page order.
    public var items: [ScannedItem] { scanned.items }

    /// The cursor of the next page, `nil` on the last one.
    public var cursor: String? { scanned.cursor }

    /// The raw JSON bytes of `item` (an object, as received).
    public func rawBytes(of item: ScannedItem) -> ArraySlice<UInt8> {
        body[item.range]
    }

    /// A copy of the raw JSON bytes of `item`, to store.
    public func rawData(of item: ScannedItem) -> Data {
        body.withUnsafeBytes { Data(UnsafeRawBufferPointer(rebasing: $0[item.range])) }
    }

    /// `item` decoded. The scanner validated the page, so this fails only when `item`
    /// does not come from this page.
    public func decode(_ item: ScannedItem) throws(JSONParseError) -> JSONValue {
        let result = body.withUnsafeBytes { buffer -> Result<JSONValue, JSONParseError> in
            do throws(JSONParseError) {
                return .success(try JSONValue.parse(UnsafeRawBufferPointer(rebasing: buffer[item.range])))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// What a complete poll read.
public struct PollSummary: Sendable, Hashable {
    /// Pages fetched.
    public var pages: Int
    /// Items on those pages (a chat listed twice counts twice).
    public var items: Int
    /// Body bytes received.
    public var bytes: Int

    public init(pages: Int, items: Int, bytes: Int) {
        self.pages = pages
        self.items = items
        self.bytes = bytes
    }
}

/// Why a poll did not complete, and at which page (counted from 1).
///
/// A failed poll changes nothing (events.md): the caller records the failure and, for
/// ``isAuthenticationFailure``, raises `account.error`. Descriptions are one line, name
/// the page, and never contain the API key:
///
/// ```
/// page 3: HTTP 503 errors/service_unavailable: Service unavailable (Please try again later.)
/// page 1: no complete answer within the request timeout
/// page 2: malformed page: item 17: chat has no string "id"
/// ```
public enum PollFailure: Error, Sendable, CustomStringConvertible {
    /// The API answered with an error status (including 3xx: redirects are not followed).
    case api(UnipileAPIError, page: Int)
    /// No complete answer (head and body) within the request timeout.
    case timeout(page: Int)
    /// The request could not be made or its answer not read (connection refused, reset,
    /// TLS, ...).
    case transport(String, page: Int)
    /// The answer is not a usable page: not JSON, not the page shape, a chat without an
    /// id, too large, or a cursor that would page forever.
    case malformed(String, page: Int)
    /// The page handler passed to ``UnipileClient/fetchAllChats(_:digestSeed:onPage:)``
    /// threw this error.
    case pageHandler(any Error, page: Int)
    /// The poll's task was cancelled (shutdown, reload).
    case cancelled

    /// The page the failure happened at, or `nil` for ``cancelled``.
    public var page: Int? {
        switch self {
        case .api(_, let page), .timeout(let page), .transport(_, let page), .malformed(_, let page),
            .pageHandler(_, let page):
            page
        case .cancelled:
            nil
        }
    }

    /// The API's error, for ``api(_:page:)``.
    public var apiError: UnipileAPIError? {
        if case .api(let error, _) = self { return error }
        return nil
    }

    /// Whether this is a 401/403: the account or key needs a person (`account.error`).
    public var isAuthenticationFailure: Bool { apiError?.isAuthenticationFailure ?? false }

    public var description: String {
        switch self {
        case .api(let error, let page): "page \(page): \(error)"
        case .timeout(let page): "page \(page): no complete answer within the request timeout"
        case .transport(let message, let page): "page \(page): request failed: \(message)"
        case .malformed(let message, let page): "page \(page): malformed page: \(message)"
        case .pageHandler(let error, let page): "page \(page): \(error)"
        case .cancelled: "poll cancelled"
        }
    }
}
