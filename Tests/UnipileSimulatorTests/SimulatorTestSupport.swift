import Foundation
import Logging
import Testing
import UnipileSimulator

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The key every test simulator expects.
let testAPIKey = "sim-test-key-6f1c"

/// An HTTP answer as the test client saw it.
struct HTTPAnswer: Sendable {
    var status: Int
    var body: Data
    var headers: [String: String]
    /// Seconds from sending the request to having the whole answer.
    var elapsed: Double

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object (fails the test when it is not one).
    func object(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
        return try #require(value as? [String: Any], "not a JSON object: \(text.prefix(200))", sourceLocation: sourceLocation)
    }

    /// `items` of a ChatList answer.
    func items(sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
        let list = try object(sourceLocation: sourceLocation)
        #expect(list["object"] as? String == "ChatList", sourceLocation: sourceLocation)
        return try #require(list["items"] as? [[String: Any]], sourceLocation: sourceLocation)
    }

    /// `cursor` of a ChatList answer (`nil` for JSON null).
    func cursor() throws -> String? {
        try object()["cursor"] as? String
    }
}

/// A small client over URLSession, with a bounded timeout on every request.
struct TestClient: Sendable {
    let baseURL: String
    let session: URLSession

    init(baseURL: String) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.timeoutIntervalForResource = 20
        self.session = URLSession(configuration: configuration)
    }

    func send(
        _ method: String, _ path: String, apiKey: String? = nil, body: String? = nil, timeout: Double = 10
    ) async throws -> HTTPAnswer {
        let url = try #require(URL(string: baseURL + path))
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        if let apiKey { request.setValue(apiKey, forHTTPHeaderField: "X-API-KEY") }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let start = ContinuousClock.now
        let (data, response) = try await session.data(for: request)
        let elapsed = ContinuousClock.now - start
        let http = try #require(response as? HTTPURLResponse)
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return HTTPAnswer(status: http.statusCode, body: data, headers: headers, elapsed: seconds)
    }

    /// `GET /api/v1/chats?QUERY` with the test key.
    func chats(_ query: String = "", apiKey: String? = testAPIKey) async throws -> HTTPAnswer {
        try await send("GET", "/api/v1/chats" + (query.isEmpty ? "" : "?" + query), apiKey: apiKey)
    }

    /// Every chat the API lists for `query`, following cursors (at most `maxPages` pages).
    func allChats(_ query: String = "", maxPages: Int = 1000) async throws -> (items: [[String: Any]], pages: Int) {
        var items: [[String: Any]] = []
        var cursor: String?
        for page in 1...maxPages {
            var parts = query.isEmpty ? [] : [query]
            if let cursor { parts.append("cursor=" + cursor) }
            let answer = try await chats(parts.joined(separator: "&"))
            try #require(answer.status == 200, "page \(page): \(answer.status) \(answer.text.prefix(300))")
            items += try answer.items()
            cursor = try answer.cursor()
            if cursor == nil { return (items, page) }
        }
        Issue.record("cursor chain longer than \(maxPages) pages")
        return (items, maxPages)
    }
}

/// Runs `body` against a fresh simulator on a free loopback port.
func withSimulator<T: Sendable>(
    chats: Int = 200, seed: UInt64 = 1, changeEvery: Duration? = nil,
    _ body: (RunningSimulator, TestClient) async throws -> T
) async throws -> T {
    let options = SimulatorOptions(apiKey: testAPIKey, chats: chats, seed: seed, changeEvery: changeEvery)
    return try await UnipileSimulator.withRunning(options, logger: quietLogger) { simulator in
        try await body(simulator, TestClient(baseURL: simulator.baseURL))
    }
}

/// Milliseconds of an ISO timestamp as the simulator writes them (`nil` for null).
func timestampMilliseconds(_ chat: [String: Any]) -> Int64? {
    guard let text = chat["timestamp"] as? String else { return nil }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    guard let date = formatter.date(from: text) else { return nil }
    return Int64((date.timeIntervalSince1970 * 1000).rounded())
}

/// Whether `a` is listed before `b`: newest timestamp first, null timestamps last, ties by id.
func listedBefore(_ a: [String: Any], _ b: [String: Any]) -> Bool {
    switch (timestampMilliseconds(a), timestampMilliseconds(b)) {
    case let (x?, y?) where x != y: return x > y
    case (.some, nil): return true
    case (nil, .some): return false
    default: return (a["id"] as? String ?? "") < (b["id"] as? String ?? "")
    }
}

func ids(_ items: [[String: Any]]) -> [String] { items.compactMap { $0["id"] as? String } }

/// Warnings and errors only: the suite's output stays readable.
let quietLogger: Logger = {
    var logger = Logger(label: "simulator-tests")
    logger.logLevel = .warning
    return logger
}()
