import AsyncHTTPClient
import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Detect
import Formats
import Rules
import Runtime
import Store
import StoreSQLite
import Unipile
import UnipileScanner
import Foundation
import Synchronization
import Hummingbird
import Testing

// The client against a real HTTP server on 127.0.0.1: a Hummingbird application started
// per test, answering each request from a script.

/// One request as the scripted server saw it.
private struct SeenRequest: Sendable {
    var path: String
    /// The query as sent (still percent-encoded).
    var rawQuery: String
    /// The query parameters, decoded.
    var parameters: [String: String]
    /// Header values by lowercased name.
    var headers: [String: String]
    var receivedAt: ContinuousClock.Instant

    init(_ request: Request) {
        path = request.uri.path
        rawQuery = request.uri.query ?? ""
        var components = URLComponents()
        components.percentEncodedQuery = rawQuery
        parameters = [:]
        for item in components.queryItems ?? [] { parameters[item.name] = item.value ?? "" }
        headers = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        receivedAt = .now
    }
}

private actor RequestLog {
    private(set) var requests: [SeenRequest] = []

    /// Records `request`; returns its position, from 0.
    func append(_ request: SeenRequest) -> Int {
        requests.append(request)
        return requests.count - 1
    }
}

/// Holds a scripted answer back until the test opens it (or 10 s pass: nothing hangs).
private actor Gate {
    private var isOpen = false

    func open() { isOpen = true }

    func wait() async {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while !isOpen, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

private typealias Script = @Sendable (SeenRequest, Int) async -> Response

private let apiKey = Secret("sk_test_0123456789_unipile")

/// Runs `body` with a base URL served by `script` on 127.0.0.1 and an HTTP client that
/// does not follow redirects; stops both afterwards.
private func withScriptedServer<T: Sendable>(
    _ script: @escaping Script,
    _ body: (_ baseURL: URL, _ http: HTTPClient, _ log: RequestLog) async throws -> T
) async throws -> T {
    let log = RequestLog()
    let router = Router()
    router.get("**") { request, _ -> Response in
        let seen = SeenRequest(request)
        let index = await log.append(seen)
        return await script(seen, index)
    }
    return try await withTestHTTPClient(UnipileClient.makeHTTPClientConfiguration()) { http in
        try await withLocalHTTPServer(router, label: "unipile-test-server") { port in
            try await body(try #require(URL(string: "http://127.0.0.1:\(port)")), http, log)
        }
    }
}

/// Runs `body` with a TCP port of 127.0.0.1 that is bound but not listening: connections
/// to it are refused, and no other test can take it meanwhile.
private func withRefusingPort<T>(_ body: (Int) async throws -> T) async throws -> T {
    #if os(Linux)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    try #require(descriptor >= 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
        }
    }
    try #require(bound)
    return try await body(Int(UInt16(bigEndian: address.sin_port)))
}

// MARK: - Scripted answers

private func chatJSON(_ id: String, account: String = "acc_1", type: String = "LINKEDIN", name: String = "A chat") -> String {
    let chat: JSONObject = [
        "object": .string("Chat"), "id": .string(id), "account_id": .string(account), "account_type": .string(type),
        "name": .string(name), "unread_count": .int(0), "archived": .int(0), "folder": .array([.string("INBOX")]),
    ]
    return JSONValue.object(chat).compactString
}

private func pageJSON(_ items: [String], cursor: String?) -> String {
    #"{"object":"ChatList","items":["# + items.joined(separator: ",") + #"],"cursor":"#
        + (cursor.map { JSONValue.string($0).compactString } ?? "null") + "}"
}

private func answer(_ text: String, status: Int = 200, headers: HTTPFields = [:]) -> Response {
    var fields = headers
    fields[.contentType] = "application/json"
    return Response(
        status: HTTPResponse.Status(code: status), headers: fields,
        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
}

private func errorAnswer(_ status: Int, _ type: String, _ title: String, _ detail: String) -> Response {
    let body: JSONObject = ["status": .int(Int64(status)), "type": .string(type), "title": .string(title), "detail": .string(detail)]
    return answer(JSONValue.object(body).compactString, status: status)
}

/// Runs a poll; returns its failure, recording an issue when it completes.
private func pollFailure(
    _ client: UnipileClient, _ query: ChatListQuery = ChatListQuery(), pagesSeen: PageCounter? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) async -> PollFailure? {
    do {
        let summary = try await client.fetchAllChats(query, fingerprintSeed: 1) { _ in await pagesSeen?.increment() }
        Issue.record("the poll completed: \(summary)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

private actor PageCounter {
    private(set) var count = 0
    func increment() { count += 1 }
}

private func client(_ baseURL: URL, _ http: HTTPClient, timeout: Duration = .seconds(5), rate: Double = 0) -> UnipileClient {
    UnipileClient(httpClient: http, baseURL: baseURL, apiKey: apiKey, requestTimeout: timeout, maxRequestsPerSecond: rate)
}

// MARK: - Tests

@Suite("Unipile client", .timeLimit(.minutes(1)))
struct UnipileClientTests {
    @Test("the shared HTTP client follows no redirect, retries no connection and traces nothing")
    func httpClientConfiguration() {
        let configuration = UnipileClient.makeHTTPClientConfiguration()
        #expect(configuration.connectionPool.retryConnectionEstablishment == false)
        #expect(configuration.tracing.tracer == nil)
    }

    @Test("follows the cursor chain, percent-encoding cursors, and hands over every page")
    func paging() async throws {
        let cursors = ["c1/+=&?%é 🙂", "c2#x"]
        let pages = [
            pageJSON([chatJSON("chat_1"), chatJSON("chat_2", name: "Zoë \"quoted\" {braces}")], cursor: cursors[0]),
            pageJSON([chatJSON("chat_3", account: "acc_2", type: "WHATSAPP")], cursor: cursors[1]),
            pageJSON([], cursor: nil),
        ]
        try await withScriptedServer({ _, index in answer(pages[min(index, pages.count - 1)]) }) { baseURL, http, log in
            let collected = PagesCollector()
            let summary = try await client(baseURL, http).fetchAllChats(ChatListQuery(pageSize: 2), fingerprintSeed: 42) { page in
                await collected.add(page)
            }
            #expect(summary == PollSummary(pages: 3, items: 3, bytes: pages.reduce(0) { $0 + $1.utf8.count }))

            let requests = await log.requests
            #expect(requests.count == 3)
            #expect(requests.map(\.path) == ["/api/v1/chats", "/api/v1/chats", "/api/v1/chats"])
            #expect(requests.map { $0.parameters["cursor"] } == [nil, cursors[0], cursors[1]])
            #expect(requests[1].rawQuery.contains("cursor=c1%2F%2B%3D%26%3F%25%C3%A9%20%F0%9F%99%82"))
            #expect(requests.allSatisfy { $0.parameters["limit"] == "2" })

            let seen = await collected.pages
            #expect(seen.map(\.number) == [1, 2, 3])
            #expect(seen.flatMap { page in page.items.map { page.id(of: $0) } } == ["chat_1", "chat_2", "chat_3"])
            #expect(seen.flatMap { $0.items.map(\.key) } == ["chat_1", "chat_2", "chat_3"].map(ChatKey.init(id:)))
            #expect(seen[1].accountID(of: seen[1].items[0]) == "acc_2")
            #expect(seen[1].accountType(of: seen[1].items[0]) == "WHATSAPP")
            let second = seen[0].items[1]
            #expect(String(decoding: seen[0].rawBytes(of: second), as: UTF8.self) == chatJSON("chat_2", name: "Zoë \"quoted\" {braces}"))
            #expect(seen[0].rawData(of: second) == Data(chatJSON("chat_2", name: "Zoë \"quoted\" {braces}").utf8))
            #expect(try seen[0].decode(second)["name"]?.stringValue == "Zoë \"quoted\" {braces}")
            #expect(second.fingerprint == ChatFingerprint.fingerprint(of: Array(seen[0].rawBytes(of: second)), seed: 42))
        }
    }

    @Test("sends the filters, the API key, Accept and User-Agent")
    func filtersAndHeaders() async throws {
        try await withScriptedServer({ _, _ in answer(pageJSON([chatJSON("c")], cursor: nil)) }) { baseURL, http, log in
            let query = ChatListQuery(
                pageSize: 50, accountType: "LINKEDIN", accountIDs: ["acc_1", "acc_2"], unread: false,
                before: "2025-06-01T00:00:00.000Z", after: "2025-01-01T00:00:00.000Z")
            _ = try await client(baseURL, http).fetchAllChats(query, fingerprintSeed: 0) { _ in }
            let request = try #require(await log.requests.first)
            #expect(request.parameters["limit"] == "50")
            #expect(request.parameters["account_type"] == "LINKEDIN")
            #expect(request.parameters["account_id"] == "acc_1,acc_2")
            #expect(request.rawQuery.contains("account_id=acc_1,acc_2"))
            #expect(request.parameters["unread"] == "false")
            #expect(request.parameters["before"] == "2025-06-01T00:00:00.000Z")
            #expect(request.parameters["after"] == "2025-01-01T00:00:00.000Z")
            #expect(request.parameters["cursor"] == nil)
            #expect(request.headers["x-api-key"] == apiKey.value)
            #expect(request.headers["accept"] == "application/json")
            #expect(request.headers["user-agent"] == "chatbridge/\(UnipileClient.version)")
        }
    }

    @Test("no filters: only the page size is sent")
    func noFilters() async throws {
        try await withScriptedServer({ _, _ in answer(pageJSON([], cursor: nil)) }) { baseURL, http, log in
            _ = try await client(baseURL, http).fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { _ in }
            #expect(await log.requests.first?.rawQuery == "limit=250")
        }
    }

    @Test("a base URL with a path and a trailing slash")
    func baseURLWithPath() async throws {
        try await withScriptedServer({ _, _ in answer(pageJSON([], cursor: nil)) }) { baseURL, http, log in
            let prefixed = try #require(URL(string: baseURL.absoluteString + "/proxy/unipile/"))
            _ = try await client(prefixed, http).fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { _ in }
            #expect(await log.requests.first?.path == "/proxy/unipile/api/v1/chats")
        }
    }

    @Test(
        "error answers become PollFailure.api with the API's type, title and detail",
        arguments: [
            (401, "errors/invalid_credentials", "Invalid credentials", "The provided credentials are invalid."),
            (403, "errors/insufficient_permissions", "Insufficient permissions", "Valid authentication but insufficient permissions."),
            (400, "errors/invalid_parameters", "Invalid parameters", "limit must be between 1 and 250"),
            (429, "errors/too_many_requests", "Too many requests", "Slow down."),
            (500, "errors/unexpected_error", "Unexpected error", "Something went wrong."),
            (503, "errors/service_unavailable", "Service unavailable", "Please try again later."),
            (504, "errors/request_timeout", "Request timed out", "Request Timeout. Please try again."),
        ])
    func apiErrors(status: Int, type: String, title: String, detail: String) async throws {
        try await withScriptedServer({ _, _ in errorAnswer(status, type, title, detail) }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            guard case .api(let error, let page) = failure else {
                Issue.record("expected an API failure, got \(failure)")
                return
            }
            #expect(page == 1)
            #expect(error.status == status)
            #expect(error.type == type)
            #expect(error.title == title)
            #expect(error.detail == detail)
            #expect(failure.isAuthenticationFailure == (status == 401 || status == 403))
            #expect(failure.description == "page 1: HTTP \(status) \(type): \(title) (\(detail))")
            #expect(error.json["status"] == .int(Int64(status)))
        }
    }

    @Test("Retry-After of a 429 is kept")
    func retryAfter() async throws {
        try await withScriptedServer({ _, _ in
            var response = errorAnswer(429, "errors/too_many_requests", "Too many requests", "")
            response.headers[.init("Retry-After")!] = "7"
            return response
        }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            #expect(failure.apiError?.retryAfter == .seconds(7))
        }
    }

    @Test("a non-JSON error body keeps the status and the start of the text")
    func htmlErrorBody() async throws {
        let html = "<html><head><title>502 Bad Gateway</title></head><body>" + String(repeating: "x", count: 1_000) + "</body></html>"
        try await withScriptedServer({ _, _ in answer(html, status: 502) }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            let error = try #require(failure.apiError)
            #expect(error.status == 502)
            #expect(error.type == nil)
            #expect(error.bodyExcerpt == String(html.prefix(300)))
            #expect(failure.description.hasPrefix("page 1: HTTP 502: <html><head><title>502 Bad Gateway"))
        }
    }

    @Test("an API key echoed by the server never reaches a description")
    func echoedKey() async throws {
        try await withScriptedServer({ seen, _ in
            errorAnswer(401, "errors/invalid_credentials", "Invalid key \(seen.headers["x-api-key"] ?? "")", "key: \(seen.headers["x-api-key"] ?? "")")
        }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            #expect(!failure.description.contains(apiKey.value))
            #expect(!"\(failure)".contains(apiKey.value))
            #expect(!(failure.apiError?.json.compactString.contains(apiKey.value) ?? true))
            #expect(failure.description.contains("<redacted>"))
        }
    }

    @Test("a page that is not JSON fails the poll")
    func malformedJSON() async throws {
        try await withScriptedServer({ _, _ in answer(#"{"object":"ChatList","items":[{"id":"a"},"#) }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            guard case .malformed(let message, let page) = failure else {
                Issue.record("expected a malformed page, got \(failure)")
                return
            }
            #expect(page == 1)
            #expect(message.contains("invalid JSON at byte"))
        }
    }

    @Test("a chat without an id fails the poll, naming the item")
    func missingID() async throws {
        let page = pageJSON([chatJSON("ok"), #"{"object":"Chat","name":"no id"}"#], cursor: nil)
        try await withScriptedServer({ _, _ in answer(page) }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            #expect(failure.description == #"page 1: malformed page: item 2: chat has no string "id""#)
        }
    }

    @Test("a server that never answers times out")
    func neverAnswers() async throws {
        let gate = Gate()
        try await withScriptedServer({ _, _ in
            await gate.wait()
            return answer(pageJSON([], cursor: nil))
        }) { baseURL, http, _ in
            let started = ContinuousClock.now
            let failure = await pollFailure(client(baseURL, http, timeout: .milliseconds(300)))
            let elapsed = ContinuousClock.now - started
            await gate.open()
            guard case .timeout(let page)? = failure else {
                Issue.record("expected a timeout, got \(String(describing: failure))")
                return
            }
            #expect(page == 1)
            #expect(elapsed >= .milliseconds(300))
            #expect(failure?.description == "page 1: no complete answer within the request timeout")
        }
    }

    @Test("a body that stalls after the headers times out too")
    func stallingBody() async throws {
        let gate = Gate()
        try await withScriptedServer({ _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: #"{"object":"ChatList","items":["#))
                    await gate.wait()
                    try await writer.write(ByteBuffer(string: #"],"cursor":null}"#))
                    try await writer.finish(nil)
                })
        }) { baseURL, http, _ in
            let failure = await pollFailure(client(baseURL, http, timeout: .milliseconds(300)))
            await gate.open()
            guard case .timeout(page: 1)? = failure else {
                Issue.record("expected a timeout at page 1, got \(String(describing: failure))")
                return
            }
        }
    }

    @Test("a page whose connection breaks after the head fails the poll: never a page cut short")
    func pageCutShort() async throws {
        struct Broken: Error {}
        try await withScriptedServer({ _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: #"{"object":"ChatList","items":["#))
                    throw Broken()
                })
        }) { baseURL, http, _ in
            let failure = await pollFailure(client(baseURL, http))
            guard case .transport(_, page: 1)? = failure else {
                Issue.record("expected a transport failure at page 1, got \(String(describing: failure))")
                return
            }
        }
    }

    @Test("an error answer whose body breaks still fails the poll with its status")
    func errorBodyCutShort() async throws {
        struct Broken: Error {}
        try await withScriptedServer({ _, _ in
            Response(
                status: .serviceUnavailable, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: #"{"status":503,"type":"errors/service_unava"#))
                    throw Broken()
                })
        }) { baseURL, http, _ in
            let failure = await pollFailure(client(baseURL, http))
            guard case .api(let error, page: 1)? = failure else {
                Issue.record("expected an API failure at page 1, got \(String(describing: failure))")
                return
            }
            #expect(error.status == 503)
        }
    }

    @Test("a 500 in the middle of paging fails the poll at that page")
    func errorMidway() async throws {
        try await withScriptedServer({ _, index in
            index == 0
                ? answer(pageJSON([chatJSON("a")], cursor: "next"))
                : errorAnswer(500, "errors/provider_error", "Provider error", "The provider is experiencing operational problems.")
        }) { baseURL, http, log in
            let counter = PageCounter()
            let failure = try #require(await pollFailure(client(baseURL, http), pagesSeen: counter))
            guard case .api(let error, page: 2) = failure else {
                Issue.record("expected an API failure at page 2, got \(failure)")
                return
            }
            #expect(error.type == "errors/provider_error")
            #expect(await counter.count == 1)
            #expect(await log.requests.count == 2)
        }
    }

    @Test("a cursor that comes back fails the poll instead of paging forever")
    func repeatingCursor() async throws {
        try await withScriptedServer({ _, index in
            answer(pageJSON([chatJSON("c\(index)")], cursor: index % 2 == 0 ? "A" : "B"))
        }) { baseURL, http, log in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            guard case .malformed(let message, page: 3) = failure else {
                Issue.record("expected a malformed page 3, got \(failure)")
                return
            }
            #expect(message.contains("cursor it had already returned"))
            #expect(await log.requests.count == 3)
        }
    }

    @Test("a cursor that never ends stops at the page limit")
    func pageLimit() async throws {
        try await withScriptedServer({ _, index in answer(pageJSON([chatJSON("c\(index)")], cursor: "page-\(index + 1)")) }) {
            baseURL, http, log in
            var limited = client(baseURL, http)
            limited.maxPages = 4
            let failure = try #require(await pollFailure(limited))
            #expect(failure.description == "page 4: malformed page: more than 4 pages in one poll (the cursor does not end)")
            #expect(await log.requests.count == 4)
        }
    }

    @Test("a body over the size cap fails the poll")
    func sizeCap() async throws {
        let big = pageJSON((0..<50).map { chatJSON("chat_\($0)") }, cursor: nil)
        try await withScriptedServer({ _, _ in answer(big) }) { baseURL, http, _ in
            var capped = client(baseURL, http)
            capped.maxPageBytes = 2_000
            let failure = try #require(await pollFailure(capped))
            #expect(failure.description == "page 1: malformed page: the page body is larger than 2000 bytes")
            // Within the cap, the same page is fine.
            capped.maxPageBytes = big.utf8.count
            let summary = try await capped.fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { _ in }
            #expect(summary.items == 50)
        }
    }

    @Test("a redirect is not followed: the key stays with the configured host")
    func redirect() async throws {
        try await withScriptedServer({ seen, _ in
            seen.path == "/api/v1/chats"
                ? Response(status: .found, headers: [.location: "/elsewhere/api/v1/chats"])
                : answer(pageJSON([], cursor: nil))
        }) { baseURL, http, log in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            #expect(failure.apiError?.status == 302)
            #expect(await log.requests.map(\.path) == ["/api/v1/chats"])
        }
    }

    @Test("a refused connection fails the poll at once, naming the endpoint, not the key")
    func connectionRefused() async throws {
        try await withRefusingPort { port in
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: UnipileClient.makeHTTPClientConfiguration())
            // A timeout far longer than the test's limit: only a failure that does not wait
            // for it can pass.
            let started = ContinuousClock.now
            let failure = await pollFailure(client(try #require(URL(string: "http://127.0.0.1:\(port)")), http, timeout: .seconds(120)))
            let elapsed = ContinuousClock.now - started
            try await http.shutdown()
            guard case .transport(let message, page: 1)? = failure else {
                Issue.record("expected a transport failure, got \(String(describing: failure))")
                return
            }
            #expect(message == "connection refused by 127.0.0.1:\(port)")
            #expect(elapsed < .seconds(60), "it did not wait for the request's 120 s deadline")
            #expect(!(failure?.description.contains(apiKey.value) ?? true))
        }
    }

    @Test("requests are paced: 5 pages at 20 per second take at least 200 ms")
    func pacing() async throws {
        try await withScriptedServer({ _, index in
            answer(pageJSON([chatJSON("c\(index)")], cursor: index < 4 ? "p\(index + 1)" : nil))
        }) { baseURL, http, log in
            let started = ContinuousClock.now
            let summary = try await client(baseURL, http, rate: 20).fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { _ in }
            let elapsed = ContinuousClock.now - started
            #expect(summary.pages == 5)
            #expect(elapsed >= .milliseconds(200))
            let times = await log.requests.map(\.receivedAt)
            // The server saw them spread out as well (allowing for network jitter).
            #expect(times[4] - times[0] >= .milliseconds(150))
        }
    }

    @Test("copies of a client share the pace across concurrent polls")
    func sharedPacer() async throws {
        try await withScriptedServer({ seen, _ in
            let step = Int(seen.parameters["cursor"] ?? "0") ?? 0
            return answer(pageJSON([chatJSON("c\(step)")], cursor: step < 2 ? "\(step + 1)" : nil))
        }) { baseURL, http, log in
            let shared = client(baseURL, http, rate: 20)
            let copy = shared
            let started = ContinuousClock.now
            async let first = shared.fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { _ in }
            async let second = copy.fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { _ in }
            let summaries = try await [first, second]
            let elapsed = ContinuousClock.now - started
            #expect(summaries.map(\.pages) == [3, 3])
            #expect(await log.requests.count == 6)
            // Six requests, one slot each, 50 ms apart.
            #expect(elapsed >= .milliseconds(250))
        }
    }

    @Test("cancelling the poll's task ends it promptly as .cancelled")
    func cancellation() async throws {
        let gate = Gate()
        try await withScriptedServer({ _, _ in
            await gate.wait()
            return answer(pageJSON([], cursor: nil))
        }) { baseURL, http, log in
            let polling = client(baseURL, http, timeout: .seconds(20))
            let task = Task { await pollFailure(polling) }
            // Cancel once the request is in flight.
            var waited = 0
            while await log.requests.isEmpty, waited < 500 {
                try await Task.sleep(for: .milliseconds(5))
                waited += 1
            }
            task.cancel()
            let failure = await task.value
            await gate.open()
            guard case .cancelled? = failure else {
                Issue.record("expected .cancelled, got \(String(describing: failure))")
                return
            }
        }
    }

    @Test("errors thrown by the page handler stop the poll")
    func handlerErrors() async throws {
        struct StoreFull: Error {}
        try await withScriptedServer({ _, index in answer(pageJSON([chatJSON("c\(index)")], cursor: "p\(index + 1)")) }) {
            baseURL, http, log in
            let polling = client(baseURL, http)
            do throws(PollFailure) {
                _ = try await polling.fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { page in
                    if page.number == 2 { throw StoreFull() }
                }
                Issue.record("the poll completed")
            } catch {
                guard case .pageHandler(let cause, page: 2) = error else {
                    Issue.record("expected a handler failure at page 2, got \(error)")
                    return
                }
                #expect(cause is StoreFull)
            }
            #expect(await log.requests.count == 2)

            // A PollFailure from the handler passes through as it is.
            do throws(PollFailure) {
                _ = try await polling.fetchAllChats(ChatListQuery(), fingerprintSeed: 0) { page in
                    throw PollFailure.malformed("chat is not storable", page: page.number)
                }
            } catch {
                #expect(error.description == "page 1: malformed page: chat is not storable")
            }
        }
    }
}

private actor PagesCollector {
    private(set) var pages: [ChatPage] = []
    func add(_ page: ChatPage) { pages.append(page) }
}

@Suite("Unipile client: hostile answers stay bounded", .timeLimit(.minutes(2)))
struct UnipileHostileAnswerTests {
    @Test("a page over the 64 MiB cap is a clear poll failure, at the default cap")
    func overTheDefaultCap() async throws {
        let filler = String(repeating: "x", count: UnipileClient.defaultMaxPageBytes)
        let big = pageJSON([chatJSON("c1", name: filler)], cursor: nil)
        try await withScriptedServer({ _, _ in answer(big) }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http, timeout: .seconds(60))))
            #expect(failure.description == "page 1: malformed page: the page body is larger than 64 MiB")
        }
    }

    @Test("a chat name of 10 MB is a chat like any other")
    func aTenMegabyteName() async throws {
        let name = String(repeating: "é", count: 5_000_000)
        let page = pageJSON([chatJSON("c1", name: name), chatJSON("c2")], cursor: nil)
        try await withScriptedServer({ _, _ in answer(page) }) { baseURL, http, _ in
            let sizes = Mutex<[Int]>([])
            let summary = try await client(baseURL, http, timeout: .seconds(60)).fetchAllChats(ChatListQuery(), fingerprintSeed: 1) { page in
                sizes.withLock { $0 += page.items.map { page.rawData(of: $0).count } }
            }
            #expect(summary.items == 2)
            #expect(sizes.withLock { $0.first ?? 0 } > 10_000_000)
        }
    }

    @Test("JSON nested 10,000 deep is a clear poll failure, not a stack overflow")
    func deepNesting() async throws {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let page = #"{"items":[{"id":"c1","x":"# + deep + "}]}"
        try await withScriptedServer({ _, _ in answer(page) }) { baseURL, http, _ in
            let failure = try #require(await pollFailure(client(baseURL, http)))
            #expect(failure.description.hasPrefix("page 1: malformed page: item 1: invalid JSON at byte"))
            #expect(failure.description.hasSuffix("nested too deeply"))
        }
    }

    @Test("a million items on one page are read, within the page cap")
    func aMillionItems() async throws {
        let items = (0..<1_000_000).map { #"{"id":"c\#($0)"}"# }
        let page = pageJSON(items, cursor: nil)
        try await withScriptedServer({ _, _ in answer(page) }) { baseURL, http, _ in
            let summary = try await client(baseURL, http, timeout: .seconds(60)).fetchAllChats(ChatListQuery(), fingerprintSeed: 1) { _ in }
            #expect(summary.items == 1_000_000)
        }
    }
}
