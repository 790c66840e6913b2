import Foundation
import ChatBridgeCore

/// Options of a `type: http` sink: any HTTP API, with the request shaped by templates.
///
/// ```yaml
/// sinks:
///   phone:
///     type: http
///     method: POST
///     url: https://ntfy.sh/${NTFY_TOPIC}
///     headers:
///       Title: "{{chat.name}}"
///     content_type: text/plain
///     body: "{{summary}}"
/// ```
///
/// The URL, the header values and the body are Mustache templates over the event, each
/// escaped for where its values land (``Formats/TemplatePlace``): percent-encoded in the
/// URL, one line in a header, JSON-string escaped in a JSON body. They are checked when
/// the configuration is loaded (`ChatBridgeConfiguration.loadChecked`), a JSON body by
/// rendering sample events.
package struct HTTPSinkConfiguration: Sendable, Hashable {
    /// The methods a sink may use.
    package static let methods = ["POST", "PUT", "PATCH", "GET", "DELETE"]

    /// `POST` (default), `PUT`, `PATCH`, `GET` or `DELETE`. `GET` and `DELETE` send no body.
    package var method: String
    /// The URL template after `${VAR}` substitution; a secret (it often holds a token).
    /// Its scheme and host are fixed text: chat content never chooses where a request goes.
    package var url: Secret
    /// Header name → value template; values are secrets (often tokens).
    package var headers: [String: Secret]
    /// The `Content-Type` of the body. Default `application/json`.
    package var contentType: String
    /// The body template; `nil` sends the event JSON (with `rule`) as the body.
    package var body: String?
    /// Standard Webhooks signing secrets, as for a webhook sink; empty: not signed.
    package var secrets: [Secret]
    /// Per request. Default 10 s.
    package var timeout: Duration
    /// Where each template was written (`url`, `body`, `headers.NAME`), for problems
    /// found in them after parsing.
    package var positions: [String: ConfigPosition]

    package init(
        method: String = "POST",
        url: Secret,
        headers: [String: Secret] = [:],
        contentType: String = "application/json",
        body: String? = nil,
        secrets: [Secret] = [],
        timeout: Duration = .seconds(10),
        positions: [String: ConfigPosition] = [:]
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.contentType = contentType
        self.body = body
        self.secrets = secrets
        self.timeout = timeout
        self.positions = positions
    }

    /// Whether the content type is JSON (`application/json`, or any `+json` type):
    /// then the body must render to valid JSON.
    package var isJSON: Bool { Self.isJSONContentType(contentType) }

    /// Whether the method carries a body.
    package var sendsBody: Bool { method != "GET" && method != "DELETE" }

    /// `application/json`, `application/json; charset=utf-8`, `application/problem+json`...
    package static func isJSONContentType(_ contentType: String) -> Bool {
        let essence = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        } ?? ""
        return essence == "application/json" || essence.hasSuffix("+json")
    }
}

/// Where something was written in a configuration file: `FILE:LINE:COLUMN`.
package struct ConfigPosition: Sendable, Hashable {
    package var file: String
    package var line: Int
    package var column: Int

    package init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// A diagnostic at this place.
    package func diagnostic(_ message: String) -> ConfigurationDiagnostic {
        ConfigurationDiagnostic(file: file, line: line, column: column, message: message)
    }
}
