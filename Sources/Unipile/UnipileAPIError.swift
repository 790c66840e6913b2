import Foundation
import ChatBridgeCore

/// An error answer of the Unipile API: the HTTP status and the API's error body
/// `{"status", "type", "title", "detail"}`.
///
/// Decoding is tolerant: a body with missing fields keeps what it has, and a body that is
/// not an error object (an HTML page from a proxy, plain text) is kept as its first 300
/// bytes in ``bodyExcerpt``, so the status is never lost:
///
/// ```swift
/// let error = UnipileAPIError(status: 401, body: Array(#"{"status":401,"type":"errors/disconnected_account","title":"Disconnected account"}"#.utf8))
/// error.isAuthenticationFailure    // true
/// error.description                // HTTP 401 errors/disconnected_account: Disconnected account
/// ```
///
/// The text comes from the server: ``description`` flattens control characters and
/// bounds each field, so a log line stays one line.
package struct UnipileAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status of the answer (authoritative over a `status` in the body).
    package var status: Int
    /// The API's error type, e.g. `errors/disconnected_account`.
    package var type: String?
    package var title: String?
    package var detail: String?
    /// The first 300 bytes of the body, when it is not a JSON error object.
    package var bodyExcerpt: String?
    /// The delay the server asked for with `Retry-After` (seconds form), if any.
    package var retryAfter: Duration?

    /// How much of a body that is not an error object is kept.
    package static let bodyExcerptLimit = 300

    package init(
        status: Int, type: String? = nil, title: String? = nil, detail: String? = nil,
        bodyExcerpt: String? = nil, retryAfter: Duration? = nil
    ) {
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.bodyExcerpt = bodyExcerpt
        self.retryAfter = retryAfter
    }

    /// Decodes an error answer; never fails.
    package init(status: Int, body: some Collection<UInt8>, retryAfter: Duration? = nil) {
        self.init(status: status, retryAfter: retryAfter)
        if let object = (try? JSONValue.parse(body))?.objectValue,
            object["type"] != nil || object["title"] != nil || object["detail"] != nil
        {
            type = Self.text(object["type"])
            title = Self.text(object["title"])
            detail = Self.text(object["detail"])
        } else if !body.isEmpty {
            bodyExcerpt = Self.excerpt(of: body)
        }
    }

    /// Whether a person must act (credentials, account or permissions): 401 and 403.
    /// These become `account.error` events; other failures are retried.
    package var isAuthenticationFailure: Bool { status == 401 || status == 403 }

    /// The `error` object of `account.error` / `account.recovered` events:
    /// `{"status": 401, "type": ..., "title": ..., "detail": ...}`, `null` for what the
    /// body did not say, plus `body` when the body was not an error object.
    package var json: JSONValue {
        var object: JSONObject = [
            "status": .int(Int64(status)),
            "type": type.map(JSONValue.string) ?? .null,
            "title": title.map(JSONValue.string) ?? .null,
            "detail": detail.map(JSONValue.string) ?? .null,
        ]
        if let bodyExcerpt { object["body"] = .string(bodyExcerpt) }
        return .object(object)
    }

    /// `HTTP 503 errors/service_unavailable: Service unavailable (Please try again later.)`
    package var description: String {
        var text = "HTTP \(status)"
        if let type { text += " " + Self.printable(type) }
        let title = title.map(Self.printable).flatMap { $0.isEmpty ? nil : $0 }
        let detail = detail.map(Self.printable).flatMap { $0.isEmpty ? nil : $0 }
        switch (title, detail) {
        case let (title?, detail?) where title != detail: text += ": \(title) (\(detail))"
        case let (title?, _): text += ": \(title)"
        case let (nil, detail?): text += ": \(detail)"
        case (nil, nil): break
        }
        if let bodyExcerpt {
            let excerpt = Self.printable(bodyExcerpt)
            if !excerpt.isEmpty { text += ": \(excerpt)" }
        }
        // Not Unipile's own error object: most often a `url` that already ends in the path
        // that chatbridge appends (the URL is a secret, so the message cannot show it).
        if status == 404, type == nil {
            text += " (no /api/v1/chats under the source's url: give the API's base, such as https://api1.unipile.com:13111)"
        }
        return text
    }

    /// This error with every occurrence of `secret` in its texts replaced by
    /// `<redacted>`: a server that echoes the API key must not put it in a log.
    package func redacting(_ secret: Secret) -> UnipileAPIError {
        guard !secret.value.isEmpty else { return self }
        func redact(_ text: String?) -> String? {
            text?.replacingOccurrences(of: secret.value, with: secret.description)
        }
        var copy = self
        copy.type = redact(type)
        copy.title = redact(title)
        copy.detail = redact(detail)
        copy.bodyExcerpt = redact(bodyExcerpt)
        return copy
    }

    // MARK: Helpers

    private static func text(_ value: JSONValue?) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let text)?: return text
        case let other?: return other.compactString
        }
    }

    private static func excerpt(of body: some Collection<UInt8>) -> String {
        var bytes = Array(body.prefix(bodyExcerptLimit))
        if body.count > bodyExcerptLimit {
            // Do not end on half a character: drop an incomplete last UTF-8 sequence.
            var lead = bytes.count - 1
            var continuations = 0
            while lead >= 0, bytes[lead] & 0xC0 == 0x80, continuations < 3 {
                lead -= 1
                continuations += 1
            }
            if lead >= 0, bytes[lead] >= 0xC0 {
                let needed = bytes[lead] >= 0xF0 ? 3 : bytes[lead] >= 0xE0 ? 2 : 1
                if continuations < needed { bytes.removeSubrange(lead...) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One line of at most 300 characters: control characters become spaces.
    static func printable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var count = 0
        for scalar in text.unicodeScalars {
            guard count < 300 else {
                out.append("…")
                break
            }
            switch scalar.properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator, .format:
                out.append(" ")
            default:
                out.append(scalar)
            }
            count += 1
        }
        return String(out).trimmingCharacters(in: .whitespaces)
    }
}
