import AsyncHTTPClient
import Hummingbird
import Logging
import Testing

// MARK: - A local HTTP server for tests

/// Runs `body` with the port of a real Hummingbird server on 127.0.0.1 that answers with
/// `router`; the server stops when `body` returns or throws.
///
/// The server binds port 0, so the system picks a free port and tests never collide;
/// the port is learnt from `onServerRunning`. Its own logging is silenced (`.critical`)
/// so test output shows only what the test itself says.
///
/// ```swift
/// let router = Router()
/// router.get("/api/v1/chats") { _, _ in "…" }
/// try await withLocalHTTPServer(router, label: "my-test-server") { port in
///     // talk to http://127.0.0.1:\(port)
/// }
/// ```
func withLocalHTTPServer<T: Sendable>(
    _ router: Router<BasicRequestContext>,
    label: String,
    _ body: (_ port: Int) async throws -> T
) async throws -> T {
    var logger = Logger(label: label)
    logger.logLevel = .critical
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            // A server that fails to start ends the stream, so the wait below fails
            // instead of hanging.
            defer { portContinuation.finish() }
            try await app.runService(gracefulShutdownSignals: [])
        }
        defer { group.cancelAll() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        return try await body(port)
    }
}

/// Runs `body` with an `HTTPClient` made with `configuration` on the shared event loop
/// group, and shuts the client down afterwards, whether `body` returns or throws.
func withTestHTTPClient<T: Sendable>(
    _ configuration: HTTPClient.Configuration,
    _ body: (HTTPClient) async throws -> T
) async throws -> T {
    let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    do {
        let result = try await body(http)
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}
