import AsyncHTTPClient
import Foundation
import Hummingbird
import Synchronization
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
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - A webhook receiver

/// One request a ``WebhookRecorder`` received.
struct RecordedWebhook: Sendable {
    /// Header values by lowercased name.
    var headers: [String: String]
    var body: [UInt8]
    /// The status it was answered with.
    var status: Int

    var json: JSONValue? { try? JSONValue.parse(body) }
    var webhookID: String? { headers["webhook-id"] }
}

/// A webhook receiver on 127.0.0.1 (Hummingbird) that records every `POST` and answers
/// as its script says: `status(index of the request)`, after `delay(index)` when that is
/// not `nil`.
///
/// ```swift
/// try await WebhookRecorder.withRunning(status: { $0 < 3 ? 503 : 200 }) { recorder in
///     // configure a webhook sink with recorder.url
///     let seen = await recorder.requests
/// }
/// ```
actor WebhookRecorder {
    private(set) var requests: [RecordedWebhook] = []
    /// Requests that arrived, answered or not yet (a delayed answer is recorded at its end).
    private(set) var started = 0
    private let status: @Sendable (Int) -> Int
    private let delay: @Sendable (Int) -> Duration?
    /// `http://127.0.0.1:PORT/hooks/e2e-secret-path`: the path stands for the secret part
    /// of a real webhook URL.
    nonisolated let url: String

    private init(url: String, status: @escaping @Sendable (Int) -> Int, delay: @escaping @Sendable (Int) -> Duration?) {
        self.url = url
        self.status = status
        self.delay = delay
    }

    /// The secret-looking part of ``url``, which must never show up in chatbridge's output.
    static let secretPath = "e2e-secret-path-4f1c"

    private func begin() -> Int {
        defer { started += 1 }
        return started
    }

    private func record(_ request: RecordedWebhook) { requests.append(request) }

    /// The requests whose body is a JSON object with `id`, in arrival order.
    var eventIDsInArrivalOrder: [String] { requests.compactMap { $0.json?["id"]?.stringValue } }

    static func withRunning<T: Sendable>(
        delay: @escaping @Sendable (Int) -> Duration? = { _ in nil },
        status: @escaping @Sendable (Int) -> Int = { _ in 200 },
        _ body: (WebhookRecorder) async throws -> T
    ) async throws -> T {
        let router = Router()
        let holder = RecorderHolder()
        router.post("**") { request, _ -> Response in
            var request = request
            let buffer = try await request.collectBody(upTo: 16 << 20)
            guard let recorder = holder.recorder else { return Response(status: .serviceUnavailable) }
            let index = await recorder.begin()
            if let delay = recorder.delay(index) { try? await Task.sleep(for: delay) }
            let code = recorder.status(index)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            await recorder.record(RecordedWebhook(headers: headers, body: Array(buffer.readableBytesView), status: code))
            return Response(status: HTTPResponse.Status(code: code), body: ResponseBody(byteBuffer: ByteBuffer(string: "ok")))
        }
        return try await withLocalHTTPServer(router, label: "e2e-webhook-recorder") { port in
            let recorder = WebhookRecorder(
                url: "http://127.0.0.1:\(port)/hooks/\(secretPath)", status: status, delay: delay)
            holder.recorder = recorder
            return try await body(recorder)
        }
    }
}

/// Lets the route reach the recorder made once the port is known.
private final class RecorderHolder: Sendable {
    private let state = Mutex<WebhookRecorder?>(nil)
    var recorder: WebhookRecorder? {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}

/// A yes/no switch a test flips while a server's script reads it.
final class TestSwitch: Sendable {
    private let state: Mutex<Bool>
    init(_ isOn: Bool = false) { state = Mutex(isOn) }
    var isOn: Bool { state.withLock { $0 } }
    func set(_ isOn: Bool) { state.withLock { $0 = isOn } }
}

/// The end-to-end suites (CLI*Tests, Crash*Tests), nested here so that they run one test
/// at a time: each starts real processes and servers, and all at once they would crowd a
/// two-core machine and upset the timing of every other suite.
@Suite(.serialized) enum EndToEndTests {}
