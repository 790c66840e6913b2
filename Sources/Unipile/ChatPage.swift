import Foundation
import ChatBridgeCore
import UnipileScanner

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
