import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

#if canImport(Glibc)
import Glibc
#endif

// The sinks against real things: a Hummingbird receiver on 127.0.0.1 for webhooks, a
// pipe for stdout, real child processes for exec.

// MARK: - A webhook receiver

/// One request as the receiver saw it.
struct ReceivedRequest: Sendable {
    var method: String
    var path: String
    /// Header values by lowercased name.
    var headers: [String: String]
    var body: [UInt8]
    var receivedAt: ContinuousClock.Instant

    var json: JSONValue? { try? JSONValue.parse(body) }
}

/// Everything the receiver saw, and how many requests it was handling at most at once.
actor ReceiverLog {
    private(set) var requests: [ReceivedRequest] = []
    private(set) var inFlight = 0
    private(set) var maxInFlight = 0

    func begin(_ request: ReceivedRequest) -> Int {
        requests.append(request)
        inFlight += 1
        maxInFlight = max(maxInFlight, inFlight)
        return requests.count - 1
    }

    func end() { inFlight -= 1 }

    /// Waits until `count` requests arrived, at most `timeout`.
    func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while requests.count < count, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return requests.count >= count
    }
}

typealias ReceiverScript = @Sendable (ReceivedRequest, Int) async -> Response

func receiverResponse(_ status: Int, _ text: String = "", headers: HTTPFields = [:]) -> Response {
    Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}

/// Runs `body` with the URL of a receiver answering with `script` and an HTTP client
/// that does not follow redirects (as the runtime makes it); stops both afterwards.
func withReceiver<T: Sendable>(
    _ script: @escaping ReceiverScript,
    _ body: (_ url: URL, _ http: HTTPClient, _ log: ReceiverLog) async throws -> T
) async throws -> T {
    let log = ReceiverLog()
    let router = Router()
    router.post("**") { request, _ -> Response in
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        var request = request
        let bytes = try await request.collectBody(upTo: 16 << 20)
        let seen = ReceivedRequest(
            method: "\(request.method)", path: request.uri.path, headers: headers,
            body: Array(bytes.readableBytesView), receivedAt: .now)
        let index = await log.begin(seen)
        let response = await script(seen, index)
        await log.end()
        return response
    }
    return try await withTestHTTPClient(.init(redirectConfiguration: .disallow)) { http in
        try await withLocalHTTPServer(router, label: "delivery-test-receiver") { port in
            try await body(try #require(URL(string: "http://127.0.0.1:\(port)/hooks/T0001/secret-path-token")), http, log)
        }
    }
}

/// Verifies a Standard Webhooks signature the way a receiver library does.
func verifyStandardWebhook(_ request: ReceivedRequest, secret: String) -> Bool {
    guard let id = request.headers["webhook-id"], let timestamp = request.headers["webhook-timestamp"],
          let signatures = request.headers["webhook-signature"],
          secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6)))
    else { return false }
    var content = Data("\(id).\(timestamp).".utf8)
    content.append(contentsOf: request.body)
    let expected = "v1," + Data(HMAC<SHA256>.authenticationCode(for: content, using: SymmetricKey(data: key))).base64EncodedString()
    return signatures.split(separator: " ").contains { $0 == expected }
}

let testSigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// MARK: - Webhook

@Suite("Delivery: webhook sink against a real receiver", .timeLimit(.minutes(1)))
struct DeliveryWebhookSinkTests {
    func request(rule: String? = "vip", name: JSONValue = .string("Jane Doe"), template: DeliveryTemplate? = nil) -> DeliveryRequest {
        let event = sampleEvent(name: name)
        return DeliveryRequest(
            deliveryID: 7, eventID: event["id"]!.stringValue!, event: event, rule: rule, sink: "team-hook",
            template: template, attempt: 1)
    }

    /// Text that must never appear in an outcome: the URL and its parts, the secrets.
    func assertNoSecrets(_ outcome: DeliveryOutcome, url: URL, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = "\(outcome)"
        for secret in [url.absoluteString, url.path, "secret-path-token", testSigningSecret, "tok_header_value"] {
            #expect(!text.contains(secret), "outcome leaks \(secret): \(text)", sourceLocation: sourceLocation)
        }
        if let port = url.port { #expect(!text.contains(":\(port)"), "outcome leaks the port: \(text)", sourceLocation: sourceLocation) }
    }

    @Test func deliversSignedJSONWithAllHeaders() async throws {
        try await withReceiver({ _, _ in receiverResponse(200, "ok") }) { url, http, log in
            let before = Int64(Date().timeIntervalSince1970)
            let sink = WebhookSink(
                name: "team-hook", url: Secret(url.absoluteString), format: .json,
                signer: WebhookSigner(secret: testSigningSecret),
                headers: [("X-Team", Secret("sales")), ("Authorization", Secret("Bearer tok_header_value")),
                          ("webhook-id", Secret("forged"))],
                timeout: .seconds(5), httpClient: http)
            let request = request()
            let outcome = await sink.deliver(request)
            #expect(outcome == .delivered(status: 200))

            let received = try #require(await log.requests.first)
            #expect(received.method == "POST")
            #expect(received.path == "/hooks/T0001/secret-path-token")
            #expect(received.headers["content-type"] == "application/json")
            #expect(received.headers["user-agent"]?.hasPrefix("chatbridge/") == true)
            #expect(received.headers["x-team"] == "sales")
            #expect(received.headers["authorization"] == "Bearer tok_header_value")
            #expect(received.headers["webhook-id"] == "\(request.eventID).vip.team-hook", "a configured header cannot forge it")
            let timestamp = try #require(received.headers["webhook-timestamp"].flatMap { Int64($0) })
            #expect(timestamp >= before && timestamp <= Int64(Date().timeIntervalSince1970) + 1)
            #expect(verifyStandardWebhook(received, secret: testSigningSecret))
            #expect(received.json == request.eventWithRule)
        }
    }

    @Test func noSignatureWithoutSecretAndIdIsTheEventAloneWithoutRule() async throws {
        try await withReceiver({ _, _ in receiverResponse(204) }) { url, http, log in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), httpClient: http)
            let outcome = await sink.deliver(request(rule: nil))
            #expect(outcome == .delivered(status: 204))
            let received = try #require(await log.requests.first)
            #expect(received.headers["webhook-signature"] == nil)
            #expect(received.headers["webhook-id"] == "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77")
            #expect(received.json?["rule"] == nil)
        }
    }

    @Test func serverErrorIsRetried() async throws {
        try await withReceiver({ _, _ in receiverResponse(500, "database on fire") }) { url, http, _ in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), httpClient: http)
            let outcome = await sink.deliver(request())
            guard case .retry(500, let error, nil) = outcome else {
                Issue.record("expected a retry, got \(outcome)")
                return
            }
            #expect(error == "sink team-hook: HTTP 500: database on fire")
            assertNoSecrets(outcome, url: url)
        }
    }

    @Test func tooManyRequestsHonoursRetryAfter() async throws {
        try await withReceiver({ _, _ in receiverResponse(429, "slow down", headers: [.retryAfter: "120"]) }) { url, http, _ in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), httpClient: http)
            let before = Date()
            let outcome = await sink.deliver(request())
            guard case .retry(429, _, let retryAfter?) = outcome else {
                Issue.record("expected a retry with Retry-After, got \(outcome)")
                return
            }
            #expect(retryAfter >= before.addingTimeInterval(119) && retryAfter <= Date().addingTimeInterval(121))
        }
    }

    @Test func notFoundIsDeadWithTheStartOfTheBody() async throws {
        let body = "no such hook " + String(repeating: "x", count: 5000)
        try await withReceiver({ _, _ in receiverResponse(404, body) }) { url, http, log in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), httpClient: http)
            let outcome = await sink.deliver(request())
            guard case .dead(404, let error) = outcome else {
                Issue.record("expected dead, got \(outcome)")
                return
            }
            #expect(error.hasPrefix("sink team-hook: HTTP 404: no such hook xxx"))
            #expect(error.utf8.count <= 1024 + "sink team-hook: HTTP 404: ".utf8.count)
            #expect(await log.requests.count == 1)
            assertNoSecrets(outcome, url: url)
        }
    }

    @Test func redirectIsDeadAndNotFollowed() async throws {
        try await withReceiver({ _, index in
            index == 0 ? receiverResponse(301, "", headers: [.location: "https://elsewhere.example/new"]) : receiverResponse(200)
        }) { url, http, log in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), httpClient: http)
            let outcome = await sink.deliver(request())
            guard case .dead(301, let error) = outcome else {
                Issue.record("expected dead, got \(outcome)")
                return
            }
            #expect(error == "sink team-hook: HTTP 301 redirect to https on another host (Location hidden), not followed for POST")
            #expect(await log.requests.count == 1, "the redirect is not followed")
        }
    }

    /// A receiver that echoes the request in its error (its path, which holds the token,
    /// and a header's token): the error that is logged and stored hides both.
    @Test func anErrorEchoingTheRequestKeepsItsTokensHidden() async throws {
        try await withReceiver({ request, _ in
            receiverResponse(404, "no hook at \(request.path) for \(request.headers["authorization"] ?? "")")
        }) { url, http, _ in
            let sink = WebhookSink(
                name: "team-hook", url: Secret(url.absoluteString),
                headers: [(name: "Authorization", value: Secret("Bearer header-token-4711"))], httpClient: http)
            guard case .dead(404, let error) = await sink.deliver(request()) else {
                Issue.record("expected dead")
                return
            }
            #expect(error == "sink team-hook: HTTP 404: no hook at <redacted> for <redacted>")
            let attempt = await sink.attempt(request())
            #expect(attempt.responseExcerpt == "no hook at <redacted> for <redacted>", "sinks test shows it hidden too")
        }
    }

    @Test func connectionRefusedIsRetriedAtOnceWithItsEndpoint() async throws {
        // Find a port nobody listens on: open a receiver, note its port, stop it.
        let url = try await withReceiver({ _, _ in receiverResponse(200) }) { url, _, _ in url }
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UnipileClient.makeHTTPClientConfiguration())
        // A timeout far longer than the test's limit: only an attempt that fails without
        // waiting for it can pass.
        let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), timeout: .seconds(120), httpClient: http)
        let outcome = await sink.deliver(request())
        try await http.shutdown()
        guard case .retry(nil, let error, nil) = outcome else {
            Issue.record("expected a retry, got \(outcome)")
            return
        }
        #expect(error == "sink team-hook: connection refused by the receiver")
        assertNoSecrets(outcome, url: url)
    }

    @Test func slowReceiverTimesOutAndIsRetried() async throws {
        try await withReceiver({ _, _ in
            try? await Task.sleep(for: .seconds(3))
            return receiverResponse(200)
        }) { url, http, _ in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), timeout: .milliseconds(300), httpClient: http)
            // The receiver would answer 200 after 3 s: a retry (not delivered) shows that
            // the sink's timeout ended the attempt, not the receiver.
            let outcome = await sink.deliver(request())
            guard case .retry(nil, let error, nil) = outcome else {
                Issue.record("expected a retry, got \(outcome)")
                return
            }
            #expect(error.contains("timed out"))
            assertNoSecrets(outcome, url: url)
        }
    }

    @Test func aBodyThatOutlastsTheTimeoutIsATimeout() async throws {
        // The head (200) comes at once, the body does not end: the sink's timeout covers the
        // whole exchange, body included, so this is a retry, not a delivery.
        try await withReceiver({ _, _ in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "{\"ok\":"))
                try? await Task.sleep(for: .seconds(3))
                try await writer.finish(nil)
            })
        }) { url, http, _ in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), timeout: .milliseconds(300), httpClient: http)
            let outcome = await sink.deliver(request())
            guard case .retry(nil, let error, nil) = outcome else {
                Issue.record("expected a retry, got \(outcome)")
                return
            }
            #expect(error.contains("timed out"))
            assertNoSecrets(outcome, url: url)
        }
    }

    @Test func aLongSuccessBodyIsReadUpToItsLimitAndDelivered() async throws {
        // More than the 64 KiB read of a 2xx body: the exchange ends there, delivered.
        let body = String(repeating: "x", count: HTTPExchange.successBodyLimit * 3)
        try await withReceiver({ _, _ in receiverResponse(200, body) }) { url, http, _ in
            let sink = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), httpClient: http)
            let attempt = await sink.attempt(request())
            #expect(attempt.outcome == .delivered(status: 200))
            #expect(attempt.responseBody.count == HTTPOutcome.keptBodyBytes)
        }
    }

    @Test func chatFormatsCarryTheTemplateText() async throws {
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            let sinkTemplate = try DeliveryTemplate("sink says {{chat.name}}")
            let slack = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), format: .slack, template: sinkTemplate, httpClient: http)
            #expect(await slack.deliver(request(name: .string("Tom & <Jerry>"))) == .delivered(status: 200))
            let ruleTemplate = try DeliveryTemplate("rule says {{chat.name}}")
            #expect(await slack.deliver(request(name: .string("Tom & <Jerry>"), template: ruleTemplate)) == .delivered(status: 200))
            let discord = WebhookSink(name: "team-hook", url: Secret(url.absoluteString), format: .discord, httpClient: http)
            #expect(await discord.deliver(request()) == .delivered(status: 200))

            let requests = await log.requests
            #expect(requests.count == 3)
            #expect(requests[0].json?["text"] == .string("sink says Tom &amp; &lt;Jerry&gt;"))
            #expect(requests[1].json?["text"] == .string("rule says Tom &amp; &lt;Jerry&gt;"), "the rule's template wins")
            #expect(requests[2].json?["content"] == .string("LinkedIn · Jane Doe: 3 unread (was 0)"))
        }
    }

    @Test func hostileNamesGoOutAsValidJSONInEveryFormat() async throws {
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            var sent = 0
            for format in DeliveryFormat.allCases {
                let sink = WebhookSink(
                    name: "team-hook", url: Secret(url.absoluteString), format: format, template: try DeliveryTemplate("{{chat.name}}"),
                    signer: WebhookSigner(secret: testSigningSecret), httpClient: http)
                for name in hostileNames {
                    #expect(await sink.deliver(request(name: .string(name))) == .delivered(status: 200))
                    sent += 1
                }
            }
            let requests = await log.requests
            #expect(requests.count == sent)
            for received in requests {
                #expect(received.json != nil, "body is JSON: \(String(decoding: received.body, as: UTF8.self))")
                #expect((try? JSONSerialization.jsonObject(with: Data(received.body))) != nil)
                #expect(verifyStandardWebhook(received, secret: testSigningSecret))
            }
        }
    }
}

// MARK: - Stdout

@Suite("Delivery: stdout sink on a pipe")
struct DeliveryStdoutSinkTests {
    init() {
        // The command line ignores SIGPIPE; so must a test that closes a pipe's reader.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Reads everything from `fd` on a thread of its own until end of file.
    func readAll(_ fd: Int32) async -> [UInt8] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count > 0 { bytes.append(contentsOf: buffer.prefix(count)); continue }
                    if count < 0, errno == EINTR { continue }
                    break
                }
                continuation.resume(returning: bytes)
            }
        }
    }

    @Test func writesOneCompactLinePerDelivery() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        async let output = readAll(readEnd)
        let sink = StdoutSink(fileDescriptor: writeEnd)
        #expect(sink.maximumConcurrency == 1)
        let big = String(repeating: "ü", count: 300_000) // far larger than a pipe's buffer: partial writes
        let requests = [
            DeliveryRequest(eventID: "a", event: sampleEvent(name: .string("line\nbreak")), rule: "vip", sink: "stdout"),
            DeliveryRequest(eventID: "b", event: sampleEvent(name: .string(big)), rule: nil, sink: "stdout"),
        ]
        for request in requests { #expect(await sink.deliver(request) == .delivered(status: nil)) }
        close(writeEnd)
        let lines = String(decoding: await output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty, "two lines, each ended by a newline")
        #expect(lines.count == 3 ? try JSONValue.parse(String(lines[0])) == requests[0].eventWithRule : false)
        #expect(lines.count == 3 ? try JSONValue.parse(String(lines[1])) == requests[1].event : false)
        #expect(lines.first.map { try? JSONValue.parse(String($0))["rule"] } == .some(.string("vip")))
    }

    @Test func aLineIsWrittenAtOnceOnlyWhenTheWriteCannotWait() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        let sink = StdoutSink(fileDescriptor: writeEnd)
        // An empty pipe takes a line of up to PIPE_BUF bytes whole.
        #expect(sink.canWriteWithoutWaiting(100))
        #expect(!sink.canWriteWithoutWaiting(Int(PIPE_BUF) + 1))
        // A full pipe (its reader not reading) could make the write wait: the queue writes.
        let flags = fcntl(writeEnd, F_GETFL)
        #expect(fcntl(writeEnd, F_SETFL, flags | O_NONBLOCK) == 0)
        let chunk = [UInt8](repeating: UInt8(ascii: " "), count: 4096)
        var filled = 0
        while chunk.withUnsafeBytes({ write(writeEnd, $0.baseAddress!, $0.count) }) > 0 { filled += chunk.count }
        #expect(fcntl(writeEnd, F_SETFL, flags) == 0)
        #expect(!sink.canWriteWithoutWaiting(100))
        // The line waits for the reader and comes out whole after what filled the pipe.
        async let delivered = sink.deliver(DeliveryRequest(eventID: "a", event: sampleEvent(), rule: "vip", sink: "stdout"))
        async let output = readAll(readEnd)
        #expect(await delivered == .delivered(status: nil))
        close(writeEnd)
        let text = await output
        #expect(text.count > filled)
        let line = String(decoding: text.dropFirst(filled), as: UTF8.self)
        #expect(line.hasSuffix("\n") && (try? JSONValue.parse(line))?["rule"] == .string("vip"))

        // A regular file never waits on a reader.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stdout-\(UUID().uuidString)").path
        let file = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        #expect(file >= 0)
        defer { close(file); unlink(path) }
        let fileSink = StdoutSink(fileDescriptor: file)
        #expect(fileSink.canWriteWithoutWaiting(1 << 20))
        #expect(await fileSink.deliver(DeliveryRequest(eventID: "b", event: sampleEvent(), rule: nil, sink: "stdout"))
            == .delivered(status: nil))
        let written = try String(contentsOfFile: path, encoding: .utf8)
        #expect(written.hasSuffix("\n") && written.filter { $0 == "\n" }.count == 1)
    }

    @Test func closedReaderMeansOutputClosed() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        defer { close(fds[1]) }
        let sink = StdoutSink(fileDescriptor: fds[1])
        let outcome = await sink.deliver(DeliveryRequest(eventID: "a", event: sampleEvent(), rule: nil, sink: "stdout"))
        #expect(outcome == .outputClosed)
    }
}

// MARK: - Exec

/// The descriptors this process has open (Linux).
func openFileDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Whether a process id names a live or zombie process.
func processExists(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// Whether a process id names a process that still runs (a zombie does not: an orphan's
/// zombie waits for PID 1, which in a container may never reap it).
func processRuns(_ pid: pid_t) -> Bool {
    guard processExists(pid) else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}

@Suite("Delivery: exec sink with real child processes")
struct DeliveryExecSinkTests {
    init() { signal(SIGPIPE, SIG_IGN) }

    func request(name: JSONValue = .string("Jane Doe"), rule: String? = "vip", template: DeliveryTemplate? = nil) -> DeliveryRequest {
        let event = sampleEvent(name: name)
        return DeliveryRequest(eventID: event["id"]!.stringValue!, event: event, rule: rule, sink: "notify", template: template)
    }

    @Test func argvTemplatesPassHostileTextLiterallyAsOneArgument() async throws {
        let dir = TemporaryDirectory()
        let marker = dir.file("pwned")
        var names = hostileNames.filter { !$0.contains("\u{0}") }
        names.append("$(touch \(marker))")
        names.append("`touch \(marker)`; touch \(marker) ; rm -rf \(dir.path)/keep")
        names.append("' ; touch \(marker) ; '")
        names.append("\" ; touch \(marker) ; \"")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: dir.file("keep")))
        for (index, name) in names.enumerated() {
            let output = dir.file("out-\(index)")
            // sh runs a fixed script; the name reaches it only as "$2", quoted.
            let sink = try ExecSink(
                name: "notify",
                argv: ["/bin/sh", "-c", #"printf '%s' "$#" > "$1.count"; printf '%s' "$2" > "$1""#, "sh", output, "{{chat.name}}"],
                timeout: .seconds(60))
            let outcome = await sink.deliver(request(name: .string(name)))
            #expect(outcome == .delivered(status: 0))
            let received = try String(contentsOfFile: output, encoding: .utf8)
            #expect(received == name, "argument \(index) arrived as written")
            #expect(try String(contentsOfFile: output + ".count", encoding: .utf8) == "2", "one argument")
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "no chat name ran as shell text")
        #expect(FileManager.default.fileExists(atPath: dir.file("keep")))
    }

    @Test func argumentsSeeTheRuleTemplateAsText() async throws {
        let dir = TemporaryDirectory()
        let output = dir.file("out")
        let sink = try ExecSink(name: "notify", argv: ["/bin/sh", "-c", #"printf '%s|%s' "$1" "$2" > "$0""#, output, "{{text}}", "{{rule}}"])
        #expect(await sink.deliver(request(template: try DeliveryTemplate("Hey {{chat.name}}"))) == .delivered(status: 0))
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "Hey Jane Doe|vip")
        #expect(await sink.deliver(request()) == .delivered(status: 0))
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "LinkedIn · Jane Doe: 3 unread (was 0)|vip")
    }

    @Test func shellCommandGetsEventOnStdinAndEnvironment() async throws {
        let dir = TemporaryDirectory()
        let output = dir.file("stdin.json")
        var environment = ProcessInfo.processInfo.environment
        environment["OUT"] = output
        let sink = ExecSink(
            name: "notify", command: .shell(#"cat > "$OUT"; env | grep '^CHATBRIDGE_' | sort > "$OUT.env""#),
            timeout: .seconds(60), environment: environment)
        let hostile = request(name: .string("$(touch \(dir.file("pwned")))"))
        #expect(await sink.deliver(hostile) == .delivered(status: 0))
        let stdin = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(stdin.last == UInt8(ascii: "\n"))
        #expect(try JSONValue.parse(Array(stdin.dropLast())) == hostile.eventWithRule)
        let env = try String(contentsOfFile: output + ".env", encoding: .utf8)
        #expect(env == """
            CHATBRIDGE_ACCOUNT_TYPE=LINKEDIN
            CHATBRIDGE_CHAT_ID=chat_456
            CHATBRIDGE_EVENT_ID=0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a77
            CHATBRIDGE_EVENT_TYPE=chat.changed
            CHATBRIDGE_KINDS=unread.increased
            CHATBRIDGE_RULE=vip
            CHATBRIDGE_SOURCE=main

            """)
        #expect(!FileManager.default.fileExists(atPath: dir.file("pwned")))
    }

    @Test func nonZeroExitIsRetriedWithStandardError() async throws {
        let sink = ExecSink(name: "notify", command: .shell("echo 'it broke' >&2; exit 3"), timeout: .seconds(60))
        let outcome = await sink.deliver(request())
        #expect(outcome == .retry(status: 3, error: "sink notify: exit status 3: it broke"))

        let noisy = ExecSink(name: "notify", command: .shell("head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1"), timeout: .seconds(60))
        guard case .retry(1, let error, nil) = await noisy.deliver(request()) else {
            Issue.record("expected a retry")
            return
        }
        #expect(error.hasPrefix("sink notify: exit status 1: xxx"))
        #expect(error.utf8.count <= 1024 + 40, "only 1 KiB of the output is kept")

        // Progress on standard output, then the reason on standard error: the end is kept.
        let chatty = ExecSink(
            name: "notify", command: .shell("head -c 5000 /dev/zero | tr '\\0' é; echo; echo 'the real reason' >&2; exit 1"),
            timeout: .seconds(60))
        guard case .retry(1, let reason, nil) = await chatty.deliver(request()) else {
            Issue.record("expected a retry")
            return
        }
        #expect(reason.hasSuffix("the real reason"), "\(reason.suffix(60))")
        #expect(reason.utf8.count <= 1024 + 40, "only 1 KiB of the output is kept")
    }

    /// A command's standard output is read with its standard error, never copied into
    /// chatbridge's own: echoing a chat's name would write escape sequences and forged
    /// log lines there. The child below is this test process's child; its output shows up
    /// in the error, on one line.
    @Test func standardOutputIsReadNotPassedOn() async throws {
        let forged = "\u{1B}[2J\u{1B}[31mEVIL\u{1B}[0m\n2026-12-02T00:00:00.000Z error forged line"
        let sink = try ExecSink(name: "notify", argv: ["/bin/sh", "-c", #"printf '%s\n' "$1"; exit 2"#, "sh", forged])
        let outcome = await sink.deliver(request())
        #expect(outcome == .retry(status: 2, error: "sink notify: exit status 2: [2J [31mEVIL [0m 2026-12-02T00:00:00.000Z error forged line"))
    }

    /// One argument past the kernel's limit for a single string (128 KiB on Linux): the
    /// delivery can never run, so it is dead at once instead of retried for days.
    @Test func anArgumentTooLongForTheKernelIsDeadAtOnce() async throws {
        let sink = try ExecSink(name: "notify", argv: ["/bin/echo", "{{chat.name}}"])
        guard case .dead(nil, let error) = await sink.deliver(request(name: .string(String(repeating: "x", count: 200_000)))) else {
            Issue.record("expected dead")
            return
        }
        #expect(error == "sink notify: cannot run /bin/echo: Argument list too long (a value in the arguments or environment is too long)")
    }

    @Test func missingProgramIsRetried() async throws {
        let sink = try ExecSink(name: "notify", argv: ["/nonexistent/chatbridge-test-program"])
        guard case .retry(nil, let error, nil) = await sink.deliver(request()) else {
            Issue.record("expected a retry")
            return
        }
        #expect(error.contains("cannot run /nonexistent/chatbridge-test-program"))
    }

    @Test func timeoutTerminatesTheProcessGroup() async throws {
        let dir = TemporaryDirectory()
        let pids = dir.file("pids")
        var environment = ProcessInfo.processInfo.environment
        environment["PIDS"] = pids
        // The shell and a grandchild; both must go.
        let sink = ExecSink(
            name: "notify", command: .shell(#"sleep 30 & echo "$$ $!" > "$PIDS"; wait"#),
            timeout: .milliseconds(500), killGrace: .seconds(2), environment: environment)
        let outcome = await sink.deliver(request())
        guard case .retry(nil, let error, nil) = outcome else {
            Issue.record("expected a retry, got \(outcome)")
            return
        }
        #expect(error.contains("timed out"))
        #expect(error.contains("stopped with SIGTERM"), "SIGTERM ended it, not the 30 s sleep: \(error)")
        let numbers = try String(contentsOfFile: pids, encoding: .utf8).split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
        #expect(numbers.count == 2)
        try await Task.sleep(for: .milliseconds(200))
        #expect(numbers.first.map(processExists) == false, "the shell is gone and reaped")
        for pid in numbers { #expect(!processRuns(pid), "process \(pid) is gone") }
    }

    @Test func aChildIgnoringSIGTERMIsKilledAfterTheGrace() async throws {
        let script = "trap '' TERM; while :; do sleep 0.05; done"
        let sink = ExecSink(
            name: "notify", command: .shell(script), timeout: .milliseconds(300), killGrace: .milliseconds(300))
        let started = ContinuousClock.now
        let outcome = await sink.deliver(request())
        // A lower bound that means something: SIGKILL waited for the timeout and the grace.
        #expect(ContinuousClock.now - started >= .milliseconds(550))
        guard case .retry(nil, let error, nil) = outcome else {
            Issue.record("expected a retry, got \(outcome)")
            return
        }
        #expect(error.contains("timed out") && error.contains("killed with SIGKILL"), "\(error)")

        // The process itself: signalled with SIGKILL (SIGTERM was ignored), and reaped.
        let child = ChildProcess(
            executable: ExecSink.shellPath, arguments: [ExecSink.shellPath, "-c", script],
            environment: ProcessInfo.processInfo.environment, standardInput: [],
            timeout: .milliseconds(300), killGrace: .milliseconds(300))
        let result = try await child.run()
        #expect(result.timedOut && !result.cancelled)
        #expect(result.termination == .signalled(SIGKILL))
    }

    @Test func childThatDoesNotReadItsInputStillFinishes() async throws {
        // A large event and a command that never reads standard input.
        let big = request(name: .string(String(repeating: "y", count: 1 << 20)))
        let sink = ExecSink(name: "notify", command: .shell("exit 0"), timeout: .seconds(60))
        #expect(await sink.deliver(big) == .delivered(status: 0))
    }

    @Test func leaksNoDescriptorsAndNoZombies() async throws {
        let dir = TemporaryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["OUT"] = dir.file("fds")
        // The child gets 0, 1, 2 only (ls itself opens 3 to read the folder).
        let lister = ExecSink(name: "notify", command: .shell(#"echo $$ > "$OUT.pid"; ls /proc/self/fd > "$OUT""#), environment: environment)
        #expect(await lister.deliver(request()) == .delivered(status: 0))
        let childFDs = try String(contentsOfFile: dir.file("fds"), encoding: .utf8).split(separator: "\n")
        #expect(childFDs == ["0", "1", "2", "3"])
        let shellPID = try #require(pid_t(try String(contentsOfFile: dir.file("fds.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(!processExists(shellPID), "the child was reaped")

        // Other suites run alongside and open pipes too: a leak of two descriptors per
        // attempt over 30 attempts stands out from their noise.
        let sink = ExecSink(name: "notify", command: .shell("cat > /dev/null; echo err >&2; exit 0"), timeout: .seconds(60))
        let failing = ExecSink(name: "notify", command: .shell("exit 9"), timeout: .seconds(60))
        _ = await sink.deliver(request()) // warm up lazily opened descriptors
        let before = openFileDescriptorCount()
        for _ in 0..<20 { #expect(await sink.deliver(request()) == .delivered(status: 0)) }
        for _ in 0..<10 { _ = await failing.deliver(request()) }
        try await Task.sleep(for: .milliseconds(700)) // the pumps' linger
        #expect(openFileDescriptorCount() - before < 20)
    }
}
