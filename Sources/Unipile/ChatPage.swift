import Foundation
import ChatBridgeCore
import UnipileScanner

/// One page of "List all chats" as the poll hands it over: the body exactly as received
/// and what ``ChatPageScanner`` found in it.
///
/// The items are not decoded. Compare ``ScannedItem/fingerprint`` with the stored fingerprint and
/// decode or copy out only what changed:
///
/// ```swift
/// try await client.fetchAllChats(query, fingerprintSeed: seed) { page in
///     for item in page.items where stored[item.id]?.fingerprint != item.fingerprint {
///         let raw = page.rawData(of: item)        // to store
///         let chat = try page.decode(item)        // to diff
///     }
/// }
/// ```
package struct ChatPage: Sendable {
    /// The page's position in the poll, counted from 1.
    package let number: Int
    /// The response body as received.
    package let body: [UInt8]
    /// The items and cursor found in ``body``.
    package let scanned: ScannedPage

    package init(number: Int, body: [UInt8], scanned: ScannedPage) {
        self.number = number
        self.body = body
        self.scanned = scanned
    }

    /// The page's chats, in page order.
    package var items: [ScannedItem] { scanned.items }

    /// The cursor of the next page, `nil` on the last one.
    package var cursor: String? { scanned.cursor }

    /// The raw JSON bytes of `item` (an object, as received).
    package func rawBytes(of item: ScannedItem) -> ArraySlice<UInt8> {
        body[item.range]
    }

    /// A copy of the raw JSON bytes of `item`, to store.
    package func rawData(of item: ScannedItem) -> Data {
        body.withUnsafeBytes { Data(UnsafeRawBufferPointer(rebasing: $0[item.range])) }
    }

    /// `item` decoded. The scanner validated the page, so this fails only when `item`
    /// does not come from this page.
    package func decode(_ item: ScannedItem) throws(JSONParseError) -> JSONValue {
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
package struct PollSummary: Sendable, Hashable {
    /// Pages fetched.
    package var pages: Int
    /// Items on those pages (a chat listed twice counts twice).
    package var items: Int
    /// Body bytes received.
    package var bytes: Int

    package init(pages: Int, items: Int, bytes: Int) {
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
package enum PollFailure: Error, Sendable, CustomStringConvertible {
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
    /// The page handler passed to ``UnipileClient/fetchAllChats(_:fingerprintSeed:onPage:)``
    /// threw this error.
    case pageHandler(any Error, page: Int)
    /// The poll's task was cancelled (shutdown, reload).
    case cancelled

    /// The page the failure happened at, or `nil` for ``cancelled``.
    package var page: Int? {
        switch self {
        case .api(_, let page), .timeout(let page), .transport(_, let page), .malformed(_, let page),
            .pageHandler(_, let page):
            page
        case .cancelled:
            nil
        }
    }

    /// The API's error, for ``api(_:page:)``.
    package var apiError: UnipileAPIError? {
        if case .api(let error, _) = self { return error }
        return nil
    }

    /// Whether this is a 401/403: the account or key needs a person (`account.error`).
    package var isAuthenticationFailure: Bool { apiError?.isAuthenticationFailure ?? false }

    package var description: String {
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
