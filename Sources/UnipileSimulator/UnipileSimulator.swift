import Foundation
import Hummingbird
import Logging

/// How to run a simulator.
public struct SimulatorOptions: Sendable {
    /// Address to bind; loopback only (`127.0.0.1`, `::1` or `localhost`).
    public var host: String
    /// Port to bind; 0 picks any free port (see ``UnipileSimulator/run(onStarted:)``).
    public var port: Int
    /// The `X-API-KEY` the API expects. Never logged.
    public var apiKey: String
    /// Number of generated chats.
    public var chats: Int
    /// Fixes the generated workspace and the sequence of random changes.
    public var seed: UInt64
    /// When set, one to three random changes happen this often.
    public var changeEvery: Duration?
    /// When set, chat times are relative to this clock (the newest chat "now"); else
    /// fixed (see ``SimulatorState/init(apiKey:chats:seed:clock:)``).
    public var clock: (@Sendable () -> Date)?

    public init(
        host: String = "127.0.0.1", port: Int = 0, apiKey: String, chats: Int = 200, seed: UInt64 = 1,
        changeEvery: Duration? = nil, clock: (@Sendable () -> Date)? = nil
    ) {
        self.clock = clock
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.chats = chats
        self.seed = seed
        self.changeEvery = changeEvery
    }
}

/// Why a simulator could not run.
public enum SimulatorError: Error, Equatable, CustomStringConvertible {
    /// The simulator serves loopback only; `host` is not a loopback address.
    case nonLoopbackHost(String)
    case invalidPort(Int)
    case invalidChangeInterval(Duration)
    /// The server stopped before it reported a bound port.
    case stoppedBeforeStarting

    public var description: String {
        switch self {
        case .nonLoopbackHost(let host):
            return "the simulator listens on loopback only; \"\(host)\" is not 127.0.0.1, ::1 or localhost"
        case .invalidPort(let port): return "port \(port) is not in 0...65535"
        case .invalidChangeInterval(let interval): return "--change-every must be positive, got \(interval)"
        case .stoppedBeforeStarting: return "the simulator stopped before it started listening"
        }
    }
}

/// A simulator that is serving, as handed to the body of ``UnipileSimulator/withRunning(_:logger:_:)``.
public struct RunningSimulator: Sendable {
    /// The port it is bound to.
    public let port: Int
    public let host: String
    /// The workspace, faults and statistics it serves from.
    public let state: SimulatorState

    /// `http://127.0.0.1:PORT` (IPv6 hosts in brackets): the base URL for the client's `base_url`.
    public var baseURL: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }
}

/// A stand-in for Unipile's "List all chats" endpoint, with a control API for tests.
///
/// ```swift
/// let options = SimulatorOptions(apiKey: "test-key", chats: 500, seed: 7)
/// try await UnipileSimulator.withRunning(options) { simulator in
///     // GET \(simulator.baseURL)/api/v1/chats with header X-API-KEY: test-key
///     await simulator.state.addFault(.error(status: 503, count: 2))
/// }
/// ```
///
/// It serves:
/// - `GET /api/v1/chats` with `unread`, `cursor`, `before`, `after`, `limit` (1...250,
///   default 100), `account_type`, `account_id` (comma-separated), as simulator.md describes.
/// - The control API, no key needed: `GET /_sim/` (the list, ``SimulatorControlAPI``),
///   `POST /_sim/chats`, `GET|PATCH|DELETE /_sim/chats/{id}`,
///   `POST|GET|DELETE /_sim/faults`, `GET /_sim/stats`, `POST /_sim/reset`.
public struct UnipileSimulator: Sendable {
    public let options: SimulatorOptions
    /// The workspace it serves; usable in-process while it runs (and before).
    public let state: SimulatorState
    private let logger: Logger

    /// Largest control API body accepted.
    static let maximumControlBody = 4 << 20

    public init(options: SimulatorOptions, logger: Logger = Logger(label: "chatbridge.simulator")) {
        self.options = options
        self.logger = logger
        self.state = SimulatorState(apiKey: options.apiKey, chats: options.chats, seed: options.seed, clock: options.clock)
    }

    /// Serves until the surrounding task is cancelled (then stops promptly).
    ///
    /// - Parameter onStarted: called once listening, with the bound port (the chosen one
    ///   when ``SimulatorOptions/port`` is 0).
    public func run(onStarted: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try validateOptions()
        let router = Router()
        addRoutes(to: router)
        let logger = self.logger
        var serverLogger = logger
        serverLogger.handler = ShutdownLogFilter(wrapped: logger.handler)
        let host = options.host
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: options.port), serverName: "unipile-simulator"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.debug("Unipile simulator listening", metadata: ["host": "\(host)", "port": "\(port)"])
                await onStarted(port)
            },
            logger: serverLogger
        )
        let state = self.state
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            if let interval = options.changeEvery {
                group.addTask {
                    try await Self.changeLoop(state: state, every: interval, logger: logger)
                }
            }
            // Whichever ends first (the server, normally by cancellation) ends the other.
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Starts a simulator in a child task, runs `body` with it once it listens, and stops it
    /// when `body` returns or throws.
    public static func withRunning<T: Sendable>(
        _ options: SimulatorOptions,
        logger: Logger = Logger(label: "chatbridge.simulator"),
        _ body: (RunningSimulator) async throws -> T
    ) async throws -> T {
        let simulator = UnipileSimulator(options: options, logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { portContinuation.finish() }
                try await simulator.run(onStarted: { port in portContinuation.yield(port) })
            }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                // The server ended before listening: surface its error.
                try await group.next()
                throw SimulatorError.stoppedBeforeStarting
            }
            let running = RunningSimulator(port: port, host: options.host, state: simulator.state)
            return try await body(running)
        }
    }

    private func validateOptions() throws(SimulatorError) {
        guard ["127.0.0.1", "::1", "localhost"].contains(options.host) else {
            throw .nonLoopbackHost(options.host)
        }
        guard (0...65535).contains(options.port) else { throw .invalidPort(options.port) }
        if let interval = options.changeEvery, interval <= .zero { throw .invalidChangeInterval(interval) }
    }

    private static func changeLoop(state: SimulatorState, every interval: Duration, logger: Logger) async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            let changes = await state.applyTick()
            logger.debug("Simulated changes", metadata: ["changes": "\(changes.map(\.description))"])
        }
    }
}

// MARK: - Routes

extension UnipileSimulator {
    private func addRoutes(to router: Router<BasicRequestContext>) {
        let state = self.state
        let logger = self.logger

        router.get("/api/v1/chats") { request, _ -> Response in
            let parameters = request.uri.queryParameters.map { (name: String($0.key), value: String($0.value)) }
            // HTTP field names are case-insensitive; `canonicalName` is lowercased.
            let apiKey = request.headers.first { $0.name.canonicalName == "x-api-key" }?.value
            let answer = await state.listChats(apiKey: apiKey, parameters: parameters)
            if let delay = answer.delay { try await Task.sleep(for: delay) }
            return Self.response(answer)
        }

        router.get("/_sim") { _, _ -> Response in
            Self.response(SimulatedResponse(status: 200, body: SimulatorControlAPI.listingJSON.serialized()))
        }
        router.post("/_sim/chats") { request, _ -> Response in
            var request = request
            let body = try await Self.collectBody(&request)
            return await Self.control(logger) { () throws(SimulatorControlError) in
                let id = try await state.upsert(chatJSON: body)
                return SimulatedResponse(status: 200, body: await state.chatJSONBytes(id: id) ?? [])
            }
        }
        router.get("/_sim/chats/:id") { _, context -> Response in
            let id = Self.pathID(context)
            return await Self.control(logger) { () throws(SimulatorControlError) in
                guard let json = await state.chatJSONBytes(id: id) else { throw .chatNotFound(id: id) }
                return SimulatedResponse(status: 200, body: json)
            }
        }
        router.patch("/_sim/chats/:id") { request, context -> Response in
            var request = request
            let id = Self.pathID(context)
            let body = try await Self.collectBody(&request)
            return await Self.control(logger) { () throws(SimulatorControlError) in
                try await state.patch(id: id, fieldsJSON: body)
                return SimulatedResponse(status: 200, body: await state.chatJSONBytes(id: id) ?? [])
            }
        }
        router.delete("/_sim/chats/:id") { _, context -> Response in
            let id = Self.pathID(context)
            return await Self.control(logger) { () throws(SimulatorControlError) in
                guard await state.remove(id: id) else { throw .chatNotFound(id: id) }
                return SimulatedResponse(status: 200, body: Array(#"{"removed":true}"#.utf8))
            }
        }

        router.post("/_sim/faults") { request, _ -> Response in
            var request = request
            let body = try await Self.collectBody(&request)
            return await Self.control(logger) { () throws(SimulatorControlError) in
                let fault = try SimulatedFault(json: body)
                await state.addFault(fault)
                return SimulatedResponse(status: 200, body: Self.faultsJSON(await state.pendingFaults))
            }
        }
        router.get("/_sim/faults") { _, _ -> Response in
            Self.response(SimulatedResponse(status: 200, body: Self.faultsJSON(await state.pendingFaults)))
        }
        router.delete("/_sim/faults") { _, _ -> Response in
            await state.clearFaults()
            return Self.response(SimulatedResponse(status: 200, body: Self.faultsJSON([])))
        }

        router.get("/_sim/stats") { _, _ -> Response in
            let json = await state.stats().json
            return Self.response(SimulatedResponse(status: 200, body: json.serialized()))
        }

        router.post("/_sim/reset") { request, _ -> Response in
            var request = request
            let body = try await Self.collectBody(&request)
            return await Self.control(logger) { () throws(SimulatorControlError) in
                let (chats, seed) = try await Self.parseReset(body, current: state)
                await state.reset(chats: chats, seed: seed)
                let answer = SimulatorJSON.object([.init("chats", .int(chats)), .init("seed", .number(String(seed)))])
                return SimulatedResponse(status: 200, body: answer.serialized())
            }
        }
    }

    private static func collectBody(_ request: inout Request) async throws -> [UInt8] {
        let buffer = try await request.collectBody(upTo: maximumControlBody)
        return Array(buffer.readableBytesView)
    }

    /// Runs a control action; refusals become `{"status":...,"type":"errors/invalid_parameters"|"errors/not_found",...}`.
    private static func control(
        _ logger: Logger,
        _ action: () async throws(SimulatorControlError) -> SimulatedResponse
    ) async -> Response {
        do {
            return response(try await action())
        } catch {
            logger.debug("Control request refused", metadata: ["reason": "\(error.description)"])
            let type = error.status == 404 ? "errors/not_found" : "errors/invalid_parameters"
            let title = error.status == 404 ? "Not found" : "Invalid simulator request"
            return response(SimulatedFault.errorAnswer(UnipileErrorBody(
                status: error.status, type: type, title: title, detail: error.description)))
        }
    }

    /// The `{id}` path component, percent-decoded (ids the control API made may hold any
    /// character).
    private static func pathID(_ context: BasicRequestContext) -> String {
        let raw = context.parameters.get("id") ?? ""
        return percentDecoded(raw) ?? raw
    }

    static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        func hexValue(_ b: UInt8?) -> UInt8? {
            guard let b else { return nil }
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let b = iterator.next() {
            if b == UInt8(ascii: "%") {
                guard let high = hexValue(iterator.next()), let low = hexValue(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func parseReset(_ body: [UInt8], current state: SimulatorState) async throws(SimulatorControlError) -> (Int, UInt64) {
        var chats = await state.chatCount
        var seed = await state.seed
        let isBlank = body.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if isBlank { return (chats, seed) }
        let value: SimulatorJSON
        do { value = try SimulatorJSON.parse(body) } catch { throw .invalidJSON(error.description) }
        guard let members = value.members else { throw .invalidReset("expected a JSON object") }
        if let raw = members[field: "chats"], !raw.isNull {
            guard let count = raw.int64Value, count >= 0, count <= Int64(SimulatorState.maximumChats) else {
                throw .invalidReset("chats must be a whole number from 0 to \(SimulatorState.maximumChats)")
            }
            chats = Int(count)
        }
        if let raw = members[field: "seed"], !raw.isNull {
            let text: String? = switch raw {
            case .number(let digits): digits
            case .string(let digits): digits
            default: nil
            }
            guard let parsed = text.flatMap({ UInt64($0) }) else {
                throw .invalidReset("seed must be a whole number from 0 to \(UInt64.max)")
            }
            seed = parsed
        }
        return (chats, seed)
    }

    private static func faultsJSON(_ faults: [SimulatedFault]) -> [UInt8] {
        let items: [SimulatorJSON] = faults.map { fault in
            var members: [SimulatorJSON.Member] = []
            switch fault.failure {
            case .error(let body):
                members.append(.init("status", .int(body.status)))
                members.append(.init("type", .string(body.type)))
            case .malformedBody:
                members.append(.init("malformed", .bool(true)))
            case .none:
                break
            }
            if let delay = fault.delay {
                let milliseconds = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
                members.append(.init("delay", .string("\(milliseconds)ms")))
            }
            members.append(.init("count", .int(fault.count)))
            members.append(.init("page", fault.page.map { .int($0) } ?? .null))
            return .object(members)
        }
        return SimulatorJSON.object([.init("faults", .array(items))]).serialized()
    }

    static func response(_ answer: SimulatedResponse) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter = answer.retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(
            status: HTTPResponse.Status(code: answer.status, reasonPhrase: reasonPhrase(answer.status)),
            headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body))
        )
    }

    private static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }
}

extension SimulatedFault {
    static func errorAnswer(_ body: UnipileErrorBody) -> SimulatedResponse {
        SimulatorState.errorResponse(body)
    }
}
