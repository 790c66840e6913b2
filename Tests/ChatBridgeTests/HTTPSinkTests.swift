import AsyncHTTPClient
import Foundation
import Hummingbird
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Formats
@testable import Rules

// The http sink: configuration, templates escaped for their place, the load-time JSON
// check, and requests against a real receiver on 127.0.0.1.

/// A receiver that records requests of every method, with the query in `path`.
func withAnyMethodReceiver<T: Sendable>(
    _ script: @escaping ReceiverScript,
    _ body: (_ origin: String, _ http: HTTPClient, _ log: ReceiverLog) async throws -> T
) async throws -> T {
    let log = ReceiverLog()
    let router = Router()
    let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        var request = request
        let bytes = try await request.collectBody(upTo: 16 << 20)
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        let seen = ReceivedRequest(
            method: "\(request.method)", path: path, headers: headers,
            body: Array(bytes.readableBytesView), receivedAt: .now)
        let index = await log.begin(seen)
        let response = await script(seen, index)
        await log.end()
        return response
    }
    for method in [HTTPRequest.Method.post, .put, .patch, .get, .delete] {
        router.on("**", method: method, use: handler)
        router.on("/", method: method, use: handler)
    }
    return try await withTestHTTPClient(.init(redirectConfiguration: .disallow)) { http in
        try await withLocalHTTPServer(router, label: "http-sink-receiver") { port in
            try await body("http://127.0.0.1:\(port)", http, log)
        }
    }
}

private let sourcesYAML = """
    sources:
      - name: main
        url: http://127.0.0.1:9/
        api_key: key_test_123
    """

private func configuration(_ sinks: String, environment: [String: String] = [:]) throws -> ChatBridgeConfiguration {
    try ChatBridgeConfiguration.parse(
        yaml: sourcesYAML + "\nsinks:\n" + sinks, file: "/tmp/http-sink-test/config/chatbridge.yaml",
        environment: environment)
}

private func httpSinkConfiguration(_ sinks: String, name: String, environment: [String: String] = [:]) throws -> HTTPSinkConfiguration {
    guard case .http(let http)? = try configuration(sinks, environment: environment).sinks[name]?.kind else {
        Issue.record("no http sink \(name)")
        throw CancellationError()
    }
    return http
}

private func deliveryRequest(_ event: JSONValue, rule: String? = "vip", sink: String = "hook") -> DeliveryRequest {
    var event = event
    if case .object(var object) = event { object["rule"] = nil; event = .object(object) }
    return DeliveryRequest(deliveryID: 1, eventID: event["id"]?.stringValue ?? "e", event: event, rule: rule, sink: sink)
}

@Suite("http sink: configuration")
struct HTTPSinkConfigurationTests {
    @Test("every key is read, defaults filled in, values substituted")
    func keys() throws {
        let http = try httpSinkConfiguration("""
              hook:
                type: http
                method: PUT
                url: https://example.com/rooms/${ROOM}/{{id}}
                headers:
                  Authorization: Bearer ${TOKEN}
                  Title: "{{chat.name}}"
                content_type: application/vnd.api+json
                body: '{"a": "{{summary}}"}'
                secret: \(testSigningSecret)
                timeout: 3s
              plain:
                type: http
                url: https://example.com/x
            """, name: "hook", environment: ["ROOM": "r1", "TOKEN": "tok_abc"])
        #expect(http.method == "PUT")
        #expect(http.url.value == "https://example.com/rooms/r1/{{id}}")
        #expect(http.headers["Authorization"]?.value == "Bearer tok_abc")
        #expect(http.headers["Title"]?.value == "{{chat.name}}")
        #expect(http.contentType == "application/vnd.api+json")
        #expect(http.isJSON)
        #expect(http.body == #"{"a": "{{summary}}"}"#)
        #expect(http.secrets.map(\.value) == [testSigningSecret])
        #expect(http.timeout == .seconds(3))
        #expect(http.positions["body"]?.line == 14)
        let plain = try httpSinkConfiguration("""
              plain:
                type: http
                url: https://example.com/x
            """, name: "plain")
        #expect(plain.method == "POST" && plain.contentType == "application/json" && plain.body == nil)
        #expect(plain.timeout == .seconds(10) && plain.secrets.isEmpty)
    }

    @Test("a host from a template, a bad method, an unknown key, a Content-Type header: refused, token not echoed")
    func refusals() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try configuration("""
                  a:
                    type: http
                    url: https://{{chat.name}}.example.com/tok_secret_path
                  b:
                    type: http
                    method: TRACE
                    url: https://example.com/
                  c:
                    type: http
                    url: https://example.com/
                    format: slack
                  d:
                    type: http
                    url: https://example.com/
                    headers:
                      Content-Type: text/plain
                  e:
                    type: http
                    url: ftp://example.com/tok_secret_path
                """)
        }
        let lines = error?.diagnostics.map { "\($0.line):\($0.column) \($0.message)" } ?? []
        #expect(lines.contains { $0.hasPrefix("8:10 sinks.a.url must start with http:// or https://") })
        #expect(lines.contains { $0.hasPrefix("11:13 sinks.b.method must be one of POST, PUT, PATCH, GET, DELETE") })
        #expect(lines.contains { $0.hasPrefix("16:5 unknown key 'format' in an http sink") }, "\(lines)")
        #expect(lines.contains { $0.contains("sinks.d.headers: give the body's type with `content_type`") })
        #expect(lines.contains { $0.hasPrefix("24:10 sinks.e.url must start") })
        #expect(!lines.joined().contains("tok_secret_path"), "\(lines)")
        #expect(lines.count == 5, "\(lines)")
    }
}

@Suite("http sink: templates escaped for their place, checked at load")
struct HTTPTemplateTests {
    @Test("each place escapes once: URL percent-encoded, header one line, JSON string, text as is")
    func places() {
        let name = "Jane \"JJ\" <Doe>\n\\ é"
        #expect(TemplatePlace.urlComponent.escaped(name) == "Jane%20%22JJ%22%20%3CDoe%3E%0A%5C%20%C3%A9")
        #expect(TemplatePlace.headerValue.escaped(name) == "Jane \"JJ\" <Doe> \\ é")
        #expect(TemplatePlace.jsonString.escaped(name) == #"Jane \"JJ\" <Doe>\n\\ é"#)
        #expect(TemplatePlace.text.escaped(name) == name)
        #expect(TemplatePlace.headerValue.escaped(String(repeating: "é", count: 5000)).utf8.count <= TemplatePlace.headerValueLimit)
        // A value of dots only is no "." or ".." path segment; dots among other text stay.
        #expect(TemplatePlace.urlComponent.escaped("..") == "%2E%2E" && TemplatePlace.urlComponent.escaped(".") == "%2E")
        #expect(TemplatePlace.urlComponent.escaped("a..b.") == "a..b." && TemplatePlace.urlComponent.escaped("") == "")
    }

    @Test("{{x}}, {{{x}}} and {{json.x}} in a JSON body give valid JSON for the hostile sample")
    func jsonBody() throws {
        let template = try HTTPRequestTemplate(HTTPSinkConfiguration(
            url: Secret("https://example.com/{{chat.name}}"),
            headers: ["Title": Secret("{{chat.name}}")],
            body: #"{"a": "{{chat.name}}", "b": "{{{chat.name}}}", "c": {{json.chat.name}}, "n": {{json.chat.unread_count}}, "missing": {{json.nothing.here}}, "s": "{{summary}}"}"#))
        let request = try template.render(SampleEvent.hostile).get()
        let body = try JSONValue.parse(request.body)
        #expect(body["a"]?.stringValue == SampleEvent.hostileName)
        #expect(body["b"]?.stringValue == SampleEvent.hostileName)
        #expect(body["c"]?.stringValue == SampleEvent.hostileName)
        #expect(body["n"] == .int(1))
        #expect(body["missing"] == .null)
        #expect(body["s"]?.stringValue == DeliverySummary.text(for: SampleEvent.hostile))
        #expect(request.url.hasPrefix("https://example.com/%24%28touch%20%2Ftmp%2Fpwned%29"))
        #expect(URL(string: request.url)?.host == "example.com")
        let title = try #require(request.headers.first?.value)
        #expect(!title.contains("\n") && !title.contains("\r") && title.contains("<!channel>"))
    }

    @Test("a chat named '.' or '..' in the URL's path is not sent: receivers resolve it to another path")
    func dotSegments() throws {
        let template = try HTTPRequestTemplate(HTTPSinkConfiguration(url: Secret("https://example.com/hooks/{{chat.name}}/notify")))
        func event(named name: String) -> JSONValue {
            guard case .object(var object) = SampleEvent.hostile, case .object(var chat)? = object["chat"] else { return .null }
            chat["name"] = .string(name)
            object["chat"] = .object(chat)
            return .object(object)
        }
        for name in [".", ".."] {
            guard case .failure(.dotSegment) = template.render(event(named: name)) else {
                Issue.record("\(name) was rendered")
                continue
            }
        }
        #expect(try template.render(event(named: "...")).get().url == "https://example.com/hooks/%2E%2E%2E/notify")
        #expect(try template.render(event(named: "a..")).get().url == "https://example.com/hooks/a../notify")
    }

    @Test("a JSON body that does not render to JSON is refused at load, at FILE:LINE:COLUMN")
    func loadCheck() throws {
        let directory = TemporaryDirectory("http-sink-check")
        let path = directory.file("chatbridge.yaml")
        try Data((sourcesYAML + """

            sinks:
              good:
                type: http
                url: https://example.com/
                body: '{"text": "{{chat.name}}"}'
              unquoted:
                type: http
                url: https://example.com/
                body: |
                  {"text": {{chat.name}}}
              broken:
                type: http
                url: https://example.com/
                headers:
                  X-Tag: "{{#chat}}"
              text:
                type: http
                url: https://example.com/
                content_type: text/plain
                body: "{{chat.name}} is not JSON and need not be"
            """).utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: ConfigurationError.self) {
            try ChatBridgeConfiguration.loadChecked(path: path, environment: [:])
        }
        let lines = error?.diagnostics.map(\.description) ?? []
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("\(path):19:14: sinks.broken.headers.X-Tag: template") })
        #expect(lines.contains { $0.hasPrefix("\(path):13:11: sinks.unquoted.body: content_type application/json needs JSON, but for a sample chat.changed event the body renders to invalid JSON") })
        // Without the check, the same file loads.
        #expect(throws: Never.self) { try ChatBridgeConfiguration.load(path: path, environment: [:]) }
    }
}

extension HTTPTemplateTests {
    @Test("read-only commands load an http sink whose variables are not set; run and rules check refuse it")
    func unsetSecrets() throws {
        let directory = TemporaryDirectory("http-sink-unset")
        let path = directory.file("chatbridge.yaml")
        try Data((sourcesYAML + """

            sinks:
              telegram:
                type: http
                url: https://api.telegram.org/bot${UNSET_BOT_TOKEN}/sendMessage
                body: '{"chat_id": "${UNSET_CHAT_ID}", "text": "{{summary}}"}'
            """).utf8).write(to: URL(fileURLWithPath: path))
        let readOnly = try ChatBridgeConfiguration.loadChecked(path: path, environment: [:], secrets: .mayBeUnset)
        #expect(readOnly.unresolvedSecrets.count == 2)
        let error = #expect(throws: ConfigurationError.self) {
            try ChatBridgeConfiguration.loadChecked(path: path, environment: [:])
        }
        let messages = error?.diagnostics.map(\.message) ?? []
        #expect(messages.contains { $0.contains("environment variable UNSET_BOT_TOKEN is not set") })
        #expect(messages.contains { $0.contains("environment variable UNSET_CHAT_ID is not set") })
    }

    /// The README's systemd recipe reads the key from the service's credentials folder,
    /// which a shell outside the service cannot read: `chatbridge status` must still work.
    @Test("read-only commands load a config whose ${file:...} secret cannot be read; run refuses it")
    func unreadableSecretFile() throws {
        let directory = TemporaryDirectory("secret-file-unreadable")
        let path = directory.file("chatbridge.yaml")
        let missing = directory.file("credentials/unipile-api-key")
        try Data("""
            sources:
              - name: main
                url: http://127.0.0.1:1
                api_key: ${file:\(missing)}
            """.utf8).write(to: URL(fileURLWithPath: path))
        let readOnly = try ChatBridgeConfiguration.loadChecked(path: path, environment: [:], secrets: .mayBeUnset)
        #expect(readOnly.unresolvedSecrets == ["sources[0].api_key (file:\(missing))"])
        let error = #expect(throws: ConfigurationError.self) {
            try ChatBridgeConfiguration.loadChecked(path: path, environment: [:])
        }
        #expect(error?.diagnostics.map(\.message).contains { $0.contains("${file:\(missing)}") } == true, "\(String(describing: error))")
    }
}

@Suite("http sink: against a real receiver", .timeLimit(.minutes(1)))
struct HTTPSinkDeliveryTests {
    @Test("method, templated URL and headers, body, signature, user agent")
    func request() async throws {
        try await withAnyMethodReceiver({ _, _ in receiverResponse(204) }) { origin, http, log in
            let sink = try HTTPSink(name: "hook", configuration: HTTPSinkConfiguration(
                method: "PATCH",
                url: Secret("\(origin)/rooms/tok_path_secret/{{chat.name}}?id={{id}}"),
                headers: ["Authorization": Secret("Bearer tok_header_value"), "X-Chat": Secret("{{chat.name}}")],
                contentType: "application/json; charset=utf-8",
                body: #"{"text": "{{summary}}", "unread": {{json.chat.unread_count}}}"#,
                secrets: [Secret(testSigningSecret)]), httpClient: http)
            let outcome = await sink.deliver(deliveryRequest(SampleEvent.hostile))
            #expect(outcome == .delivered(status: 204))
            let seen = try #require(await log.requests.first)
            #expect(seen.method == "PATCH")
            #expect(seen.path == "/rooms/tok_path_secret/%24%28touch%20%2Ftmp%2Fpwned%29%20%60id%60%20%22quoted%22%20%27single%27%20%5Cback%20%3C%21channel%3E%20%40everyone%20%40channel%20%3Cusers%2Fall%3E%20%3C%2Fscript%3E%26amp%3B%0Aline%09tab%E2%80%A8%EF%BF%BD%20%F0%9F%98%80?id=0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a78")
            #expect(seen.headers["authorization"] == "Bearer tok_header_value")
            #expect(seen.headers["x-chat"]?.contains("$(touch /tmp/pwned)") == true)
            #expect(seen.headers["content-type"] == "application/json; charset=utf-8")
            #expect(seen.headers["user-agent"]?.hasPrefix("chatbridge/") == true)
            #expect(verifyStandardWebhook(seen, secret: testSigningSecret))
            let body = try #require(seen.json)
            #expect(body["text"]?.stringValue == DeliverySummary.text(for: deliveryRequest(SampleEvent.hostile).eventWithRule))
            #expect(body["unread"] == .int(1))
        }
    }

    @Test("GET sends no body; without a body template a POST sends the event")
    func bodies() async throws {
        try await withAnyMethodReceiver({ _, _ in receiverResponse(200, "ok") }) { origin, http, log in
            let get = try HTTPSink(name: "hook", configuration: HTTPSinkConfiguration(
                method: "GET", url: Secret("\(origin)/ping/{{chat_id}}"), body: "ignored"), httpClient: http)
            #expect(await get.deliver(deliveryRequest(SampleEvent.changed)) == .delivered(status: 200))
            let post = try HTTPSink(name: "hook", configuration: HTTPSinkConfiguration(url: Secret("\(origin)/events")), httpClient: http)
            #expect(await post.deliver(deliveryRequest(SampleEvent.changed)) == .delivered(status: 200))
            let requests = await log.requests
            #expect(requests.count == 2)
            #expect(requests[0].method == "GET" && requests[0].path == "/ping/chat_456" && requests[0].body.isEmpty)
            #expect(requests[0].headers["content-type"] == nil)
            #expect(requests[1].json?["id"] == SampleEvent.changed["id"])
            #expect(requests[1].json?["rule"] == .string("vip"))
        }
    }

    @Test("503 with Retry-After is retried at that time, 404 dead, a redirect dead and not followed: no secret in any outcome")
    func outcomes() async throws {
        let script: ReceiverScript = { request, _ in
            switch request.path {
            case "/busy": receiverResponse(503, "try later", headers: [.retryAfter: "120"])
            case "/gone": receiverResponse(404, "no such room")
            default: receiverResponse(302, "", headers: [.location: "http://127.0.0.1:1/elsewhere"])
            }
        }
        try await withAnyMethodReceiver(script) { origin, http, log in
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            func sink(_ path: String) throws -> HTTPSink {
                try HTTPSink(name: "hook", configuration: HTTPSinkConfiguration(
                    url: Secret("\(origin)\(path)"), headers: ["Authorization": Secret("tok_header_value")],
                    body: #"{"t": "{{chat.name}}"}"#), httpClient: http, now: { now })
            }
            let busy = try await sink("/busy").deliver(deliveryRequest(SampleEvent.changed))
            #expect(busy == .retry(status: 503, error: "sink hook: HTTP 503: try later", retryAfter: now.addingTimeInterval(120)))
            let gone = try await sink("/gone").deliver(deliveryRequest(SampleEvent.changed))
            #expect(gone == .dead(status: 404, error: "sink hook: HTTP 404: no such room"))
            let moved = try await sink("/moved").deliver(deliveryRequest(SampleEvent.changed))
            #expect(moved.status == 302)
            guard case .dead = moved else { Issue.record("a redirect must be dead: \(moved)"); return }
            #expect(await log.requests.count == 3, "the redirect was followed")
            for outcome in [busy, gone, moved] {
                #expect(!"\(outcome)".contains("tok_header_value") && !"\(outcome)".contains(origin))
            }
        }
    }

    @Test("an event whose JSON body does not render to JSON is dead at once, nothing sent")
    func invalidAtRuntime() async throws {
        try await withAnyMethodReceiver({ _, _ in receiverResponse(200) }) { origin, http, log in
            // Valid for the samples (unread_count is a number there); not for a chat without one.
            let sink = try HTTPSink(name: "hook", configuration: HTTPSinkConfiguration(
                url: Secret("\(origin)/x"), body: #"{"unread": {{chat.unread_count}}}"#), httpClient: http)
            var event = SampleEvent.changed
            if case .object(var object) = event, case .object(var chat)? = object["chat"] {
                chat["unread_count"] = .null
                object["chat"] = .object(chat)
                event = .object(object)
            }
            let outcome = await sink.deliver(deliveryRequest(event))
            guard case .dead(nil, let error) = outcome else { Issue.record("\(outcome)"); return }
            #expect(error.hasPrefix("sink hook: the body rendered for this event is not valid JSON"))
            #expect(await log.requests.isEmpty)
        }
    }
}

@Suite("http sink: rules test shows what would be sent, no secret")
struct HTTPSinkPreviewTests {
    @Test("method, content type and body size; a body that would not be JSON says so")
    func preview() throws {
        let config = try configuration("""
              phone:
                type: http
                url: https://ntfy.example/tok_url_secret
                headers: {Authorization: Bearer tok_header_secret}
                body: '{"token": "tok_body_secret", "text": "{{summary}}"}'
              count:
                type: http
                url: https://count.example/
                body: '{"unread": {{chat.unread_count}}}'
            """)
        var event = SampleEvent.changed
        if case .object(var object) = event { object["rule"] = nil; event = .object(object) }
        var noCount = event
        if case .object(var object) = noCount, case .object(var chat)? = object["chat"] {
            chat["unread_count"] = .null
            object["chat"] = .object(chat)
            noCount = .object(object)
        }
        let parsed = try RuleSet.completeTestEvent(event, now: Date(), newEventID: { "unused" })
        let phone = RuleSet.preview(event: parsed, rule: nil, sink: "phone", configuration: config).json
        #expect(phone["type"] == "http" && phone["method"] == "POST" && phone["content_type"] == "application/json")
        let template = try HTTPRequestTemplate(try httpSinkConfiguration("""
              phone:
                type: http
                url: https://ntfy.example/tok_url_secret
                body: '{"token": "tok_body_secret", "text": "{{summary}}"}'
            """, name: "phone"))
        #expect(phone["body_bytes"] == .int(Int64(try template.render(parsed.json()).get().body.count)))
        for secret in ["tok_url_secret", "tok_header_secret", "tok_body_secret", "ntfy.example"] {
            #expect(!phone.compactString.contains(secret))
        }
        let broken = RuleSet.preview(
            event: try RuleSet.completeTestEvent(noCount, now: Date(), newEventID: { "unused" }), rule: nil, sink: "count",
            configuration: config).json
        #expect(broken["error"]?.stringValue?.hasPrefix("the body rendered for this event is not valid JSON") == true)
    }
}
