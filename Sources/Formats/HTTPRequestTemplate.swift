import Foundation
import ChatBridgeConfig
import ChatBridgeCore

/// The request of an http sink as templates: its URL, header values and body, parsed
/// once, rendered for each event with each value escaped for its place
/// (``TemplatePlace``).
///
/// ```swift
/// let template = try HTTPRequestTemplate(HTTPSinkConfiguration(
///     url: Secret("https://ntfy.sh/alerts"), headers: ["Title": Secret("{{chat.name}}")],
///     contentType: "text/plain", body: "{{summary}}"))
/// let request = try template.render(event).get()
/// // POST https://ntfy.sh/alerts, Title: Jane Doe, body: LinkedIn · Jane Doe: 3 unread (was 0)
/// ```
///
/// Without a `body` template the body is the event JSON (with `rule`), as a webhook's
/// `format: json`. A JSON content type makes a body that does not render to valid JSON
/// an error: it is never sent.
package struct HTTPRequestTemplate: Sendable {
    package let method: String
    package let contentType: String
    package let isJSON: Bool
    private let url: DeliveryTemplate
    private let headers: [(name: String, value: DeliveryTemplate)]
    private let body: DeliveryTemplate?
    private let sendsBody: Bool

    /// Parses every template of `configuration`.
    ///
    /// - Throws: ``HTTPTemplateError`` naming the field (`url`, `body`, `headers.NAME`)
    ///   whose template does not parse.
    package init(_ configuration: HTTPSinkConfiguration) throws(HTTPTemplateError) {
        func parse(_ text: String, field: String) throws(HTTPTemplateError) -> DeliveryTemplate {
            do {
                return try DeliveryTemplate(text)
            } catch {
                throw HTTPTemplateError(field: field, error: error)
            }
        }
        method = configuration.method
        contentType = configuration.contentType
        isJSON = configuration.isJSON
        sendsBody = configuration.sendsBody
        url = try parse(configuration.url.value, field: "url")
        var headers: [(name: String, value: DeliveryTemplate)] = []
        for (name, value) in configuration.headers.sorted(by: { $0.key < $1.key }) {
            headers.append((name, try parse(value.value, field: "headers.\(name)")))
        }
        self.headers = headers
        body = try configuration.body.map { text throws(HTTPTemplateError) in try parse(text, field: "body") }
    }

    /// The request for `event` (as delivered, with `rule`), or why there is none.
    package func render(_ event: JSONValue) -> Result<RenderedHTTPRequest, HTTPRenderError> {
        let renderedURL = url.render(event, place: .urlComponent)
        guard let parsed = URL(string: renderedURL), let scheme = parsed.scheme?.lowercased(),
              scheme == "http" || scheme == "https", parsed.host?.isEmpty == false
        else {
            return .failure(.invalidURL)
        }
        // A value of dots only (a chat named ".."), even percent-encoded, is a segment that
        // receivers and proxies resolve to another path (WHATWG URLs, nginx): not sent.
        let path = URLComponents(string: renderedURL)?.percentEncodedPath ?? ""
        if path.split(separator: "/").contains(where: { [".", ".."].contains($0.removingPercentEncoding ?? "") }) {
            return .failure(.dotSegment)
        }
        let renderedHeaders = headers.map { (name: $0.name, value: $0.value.render(event, place: .headerValue)) }
        var bytes: [UInt8] = []
        if sendsBody {
            if let body {
                bytes = Array(body.render(event, place: isJSON ? .jsonString : .text).utf8)
                if isJSON {
                    do {
                        _ = try JSONValue.parse(bytes)
                    } catch let error as JSONParseError {
                        return .failure(.invalidJSON(offset: error.offset, message: error.message))
                    } catch {
                        return .failure(.invalidJSON(offset: 0, message: "\(type(of: error))"))
                    }
                }
            } else {
                bytes = event.compactBytes
            }
        }
        return .success(RenderedHTTPRequest(
            method: method, url: renderedURL, headers: renderedHeaders,
            contentType: sendsBody ? contentType : nil, body: bytes))
    }
}

/// One request of an http sink, ready to send. `url` and header values are secrets.
package struct RenderedHTTPRequest: Sendable {
    package var method: String
    package var url: String
    package var headers: [(name: String, value: String)]
    /// `nil` for a method without a body.
    package var contentType: String?
    package var body: [UInt8]
}

/// A template of an http sink that does not parse.
package struct HTTPTemplateError: Error, Sendable, CustomStringConvertible {
    /// `url`, `body` or `headers.NAME`.
    package var field: String
    package var error: TemplateError

    package var description: String { "\(field): \(error)" }
}

/// Why an http sink has no request for an event. Messages hold no rendered text: the
/// URL and headers are secrets, and the body may hold both secrets and chat content.
package enum HTTPRenderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The URL rendered is not an http(s) URL.
    case invalidURL
    /// The URL rendered has a `.` or `..` path segment (a value of dots only).
    case dotSegment
    /// The content type is JSON and the body rendered is not.
    case invalidJSON(offset: Int, message: String)

    package var description: String {
        switch self {
        case .invalidURL:
            "the URL rendered for this event is not a valid http(s) URL"
        case .dotSegment:
            "the URL rendered for this event has a '.' or '..' path segment (a value of dots only, such as a chat's name), which a receiver would resolve to another path"
        case .invalidJSON(let offset, let message):
            "the body rendered for this event is not valid JSON (byte \(offset): \(message))"
        }
    }
}

extension ChatBridgeConfiguration {
    /// Loads the configuration as ``load(path:environment:currentDirectory:)`` does, then
    /// checks what only the stages past the parser can check: every http sink's
    /// templates parse, and a JSON body renders to valid JSON for every ``SampleEvent``.
    /// Every problem is reported `FILE:LINE:COLUMN: message`, at the template.
    package static func loadChecked(
        path: String,
        environment: [String: String],
        currentDirectory: String? = nil,
        secrets: SecretUse = .required
    ) throws(ConfigurationError) -> ChatBridgeConfiguration {
        let configuration = try load(
            path: path, environment: environment, currentDirectory: currentDirectory, secrets: secrets)
        let problems = configuration.templateProblems()
        guard problems.isEmpty else { throw ConfigurationError(diagnostics: problems) }
        return configuration
    }

    /// The problems of the http sinks' templates, by sink name. A sink with a secret left
    /// unresolved (a read-only command without the service's variables) is not checked:
    /// its templates are placeholders, and it sends nothing.
    package func templateProblems() -> [ConfigurationDiagnostic] {
        var problems: [ConfigurationDiagnostic] = []
        for name in sinkNames {
            guard case .http(let http)? = sinks[name]?.kind else { continue }
            if unresolvedSecrets.contains(where: { $0.hasPrefix("sinks.\(name).") }) { continue }
            func place(_ field: String) -> ConfigPosition {
                http.positions[field] ?? ConfigPosition(file: file, line: 1, column: 1)
            }
            let template: HTTPRequestTemplate
            do {
                template = try HTTPRequestTemplate(http)
            } catch {
                problems.append(place(error.field).diagnostic("sinks.\(name).\(error.field): \(error.error)"))
                continue
            }
            for sample in SampleEvent.all {
                guard case .failure(let failure) = template.render(sample) else { continue }
                let type = sample["type"]?.stringValue ?? "event"
                switch failure {
                case .invalidURL:
                    problems.append(place("url").diagnostic(
                        "sinks.\(name).url: for a sample \(type) event it renders to no valid http(s) URL"))
                case .dotSegment:
                    problems.append(place("url").diagnostic(
                        "sinks.\(name).url: for a sample \(type) event it renders to a path with a '.' or '..' segment"))
                case .invalidJSON(let offset, let message):
                    problems.append(place("body").diagnostic(
                        "sinks.\(name).body: content_type \(http.contentType) needs JSON, but for a sample \(type) event the body renders to invalid JSON (byte \(offset): \(message)); write text values inside quotes, \"{{chat.name}}\", and other values as {{json.chat.unread_count}}"))
                }
                break
            }
        }
        return problems
    }
}
