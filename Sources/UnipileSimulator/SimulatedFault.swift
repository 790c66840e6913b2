/// A failure the simulator injects into the next matching `GET /api/v1/chats` requests.
///
/// Set through `POST /_sim/faults` (see ``init(json:)``) or ``SimulatorState/addFault(_:)``:
///
/// ```json
/// {"status": 503, "type": "errors/service_unavailable", "count": 2, "page": 3}
/// {"malformed": true}
/// {"delay": "2s", "page": 2}
/// ```
///
/// Faults are checked after authentication and parameter validation, so a request that
/// would get 401 or 400 anyway neither matches nor uses one up.
public struct SimulatedFault: Sendable, Equatable {
    /// What a matching request gets instead of its page.
    public enum Failure: Sendable, Equatable {
        /// An error answer with this status and body.
        case error(UnipileErrorBody)
        /// Status 200 with a body that is not valid JSON (the real page, cut in half).
        case malformedBody
        /// The real page (after the delay, if any).
        case none
    }

    public var failure: Failure
    /// How long to wait before answering.
    public var delay: Duration?
    /// How many matching requests this fault affects (at least 1).
    public var count: Int
    /// When set, only requests for this 1-based page of a cursor chain match (the first
    /// page, requested without a cursor, is 1).
    public var page: Int?
    /// When set, error answers carry a `Retry-After` header with this many seconds.
    public var retryAfterSeconds: Int?

    public init(failure: Failure, delay: Duration? = nil, count: Int = 1, page: Int? = nil, retryAfterSeconds: Int? = nil) {
        self.failure = failure
        self.delay = delay
        self.count = max(count, 1)
        self.page = page
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// An error answer with `status`, whose body is the seed's for `type` (or a default type
    /// for the status when `type` is `nil`).
    public static func error(status: Int, type: String? = nil, count: Int = 1, page: Int? = nil) -> SimulatedFault {
        SimulatedFault(failure: .error(UnipileErrorCatalog.body(status: status, type: type)), count: count, page: page)
    }

    func matches(page requested: Int) -> Bool { page == nil || page == requested }
}

/// Why a control API request was refused.
public enum SimulatorControlError: Error, Equatable, CustomStringConvertible {
    case invalidJSON(String)
    case invalidChat(ChatValidationError)
    case invalidFault(String)
    case invalidReset(String)
    case chatNotFound(id: String)

    public var description: String {
        switch self {
        case .invalidJSON(let reason): return reason
        case .invalidChat(let error): return error.description
        case .invalidFault(let reason): return "invalid fault: \(reason)"
        case .invalidReset(let reason): return "invalid reset: \(reason)"
        case .chatNotFound(let id): return "no chat with id \"\(id)\""
        }
    }

    /// The HTTP status the control API answers with.
    var status: Int {
        if case .chatNotFound = self { return 404 }
        return 400
    }
}

extension SimulatedFault {
    /// Longest accepted delay: enough to trip any client timeout, short enough that a
    /// forgotten fault cannot wedge a test run.
    static let maximumDelay = Duration.seconds(300)

    /// Reads a fault from the control API's JSON: `status` (400...599) with optional `type`,
    /// or `malformed: true`; optional `delay` (`"2s"`, `"250ms"`, `"1m"` or a number of
    /// seconds), `count` (default 1), `page` (1-based) and `retry_after` (seconds).
    /// A fault must fail or delay something.
    init(json text: [UInt8]) throws(SimulatorControlError) {
        let value: SimulatorJSON
        do { value = try SimulatorJSON.parse(text) } catch { throw .invalidJSON(error.description) }
        guard let members = value.members else { throw .invalidFault("expected a JSON object") }
        let known: Set<String> = ["status", "type", "title", "detail", "malformed", "delay", "count", "page", "retry_after"]
        if let unknown = members.first(where: { !known.contains($0.key) }) {
            throw .invalidFault("unknown field \"\(unknown.key)\"")
        }

        func positiveInt(_ key: String) throws(SimulatorControlError) -> Int? {
            guard let raw = members[field: key], !raw.isNull else { return nil }
            guard let number = raw.int64Value, number >= 1, number <= 1_000_000 else {
                throw .invalidFault("\(key) must be a whole number from 1 to 1000000")
            }
            return Int(number)
        }

        var failure = Failure.none
        if let status = members[field: "status"], !status.isNull {
            guard let code = status.int64Value, (400...599).contains(code) else {
                throw .invalidFault("status must be a whole number from 400 to 599")
            }
            let type: String?
            switch members[field: "type"] {
            case nil, .null?: type = nil
            case .string(let name)? where !name.isEmpty: type = name
            default: throw .invalidFault("type must be a non-empty string")
            }
            var body = UnipileErrorCatalog.body(status: Int(code), type: type)
            if let title = members[field: "title"]?.stringValue { body.title = title }
            if let detail = members[field: "detail"]?.stringValue { body.detail = detail }
            failure = .error(body)
        } else if members[field: "type"] != nil {
            throw .invalidFault("type needs a status")
        }
        switch members[field: "malformed"] {
        case nil, .null?, .bool(false)?: break
        case .bool(true)?:
            guard failure == .none else { throw .invalidFault("a fault is either a status or malformed, not both") }
            failure = .malformedBody
        default: throw .invalidFault("malformed must be true or false")
        }
        var delay: Duration?
        if let raw = members[field: "delay"], !raw.isNull {
            guard let parsed = Self.parseDelay(raw) else {
                throw .invalidFault("delay must be like \"2s\", \"250ms\", \"1m\" or a number of seconds, at most 300s")
            }
            delay = parsed
        }
        guard failure != .none || delay != nil else {
            throw .invalidFault("give a status, malformed: true, or a delay")
        }
        self.init(
            failure: failure, delay: delay, count: try positiveInt("count") ?? 1,
            page: try positiveInt("page"), retryAfterSeconds: try positiveInt("retry_after"))
    }

    /// `"2s"`, `"1.5s"`, `"250ms"`, `"1m"`, or a JSON number of seconds; `nil` when invalid,
    /// negative or above ``maximumDelay``.
    static func parseDelay(_ value: SimulatorJSON) -> Duration? {
        let milliseconds: Double
        switch value {
        case .number(let text):
            guard let seconds = Double(text) else { return nil }
            milliseconds = seconds * 1000
        case .string(let text):
            let units: [(suffix: String, factor: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
            guard let unit = units.first(where: { text.hasSuffix($0.suffix) }),
                let amount = Double(text.dropLast(unit.suffix.count))
            else { return nil }
            milliseconds = amount * unit.factor
        default:
            return nil
        }
        guard milliseconds.isFinite, milliseconds >= 0, milliseconds <= 300_000 else { return nil }
        return .milliseconds(Int64(milliseconds.rounded()))
    }
}

/// How many `GET /api/v1/chats` requests the simulator answered, by status. Control API
/// requests are not counted.
public struct SimulatorStats: Sendable, Equatable {
    public var requests: Int
    public var byStatus: [Int: Int]

    public init(requests: Int = 0, byStatus: [Int: Int] = [:]) {
        self.requests = requests
        self.byStatus = byStatus
    }

    /// `{"requests":12,"by_status":{"200":10,"503":2}}`, statuses in ascending order.
    var json: SimulatorJSON {
        .object([
            .init("requests", .int(requests)),
            .init("by_status", .object(byStatus.keys.sorted().map { .init(String($0), .int(byStatus[$0]!)) })),
        ])
    }
}
