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

// Utilities of the end-to-end tests (CLI*Tests, Crash*Tests): run the built `chatbridge`
// binary as a real child process, a config folder to run it in, and a webhook receiver
// that records what it was sent. Every wait here is bounded.

// MARK: - A child process

/// A child process started by a test with Foundation's `Process`: its standard output and
/// error are collected as they come, it can be sent signals, and it is killed when the
/// value goes away while it still runs.
///
/// ```swift
/// let child = try TestChild.start(executable: "/bin/cat", arguments: [], input: .bytes(Array("hi\n".utf8)))
/// let line = await child.nextLine(timeout: .seconds(5))        // "hi"
/// let result = await child.finish(timeout: .seconds(5))         // .exited(0)
/// ```
///
/// Prefer ``ChatBridgeCLI/run(_:environment:input:timeout:)`` and
/// ``ChatBridgeCLI/withStarted(_:environment:input:_:)``, which bound every wait and
/// kill the child at the end of the scope whatever happens.
final class TestChild: Sendable {
    /// Where the child's standard input comes from.
    enum Input: Sendable {
        /// `/dev/null`.
        case none
        /// These bytes, then end of file.
        case bytes([UInt8])
        /// A descriptor the caller owns (the read end of a pipe another child writes to);
        /// the child gets a copy, the caller closes its own once the child started.
        case descriptor(Int32)
    }

    /// Where the child's standard output goes.
    enum Output: Sendable {
        /// Collected; read it with ``nextLine(timeout:)`` or in the ``Result``.
        case captured
        /// Collected until the first line has come, then no longer read (the pipe fills
        /// and the child's writes wait), as `head -1` does before it exits; close it with
        /// ``closeStandardOutput()``.
        case capturedUntilFirstLine
        /// A descriptor the caller owns (the write end of a pipe another child reads).
        case descriptor(Int32)
    }

    /// How the child ended.
    enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .signalled(let signal): "killed by signal \(signal)"
            }
        }
    }

    /// Everything a finished child left behind.
    struct Result: Sendable, CustomStringConvertible {
        /// `nil` when the child could not be reaped even after `SIGKILL` (never expected).
        var termination: Termination?
        /// Whether the time limit passed and the child was killed for it.
        var timedOut: Bool
        var standardOutput: [UInt8]
        var standardError: [UInt8]
        /// The command, for messages.
        var command: String

        var exitStatus: Int32? {
            if case .exited(let status)? = termination { return status }
            return nil
        }
        var stdout: String { String(decoding: standardOutput, as: UTF8.self) }
        var stderr: String { String(decoding: standardError, as: UTF8.self) }
        /// Standard output split into lines (without their `\n`); a last line without `\n`
        /// counts too, an empty output has no lines.
        var stdoutLines: [String] { Self.lines(stdout) }
        var stderrLines: [String] { Self.lines(stderr) }

        var description: String {
            "`\(command)`: \(termination.map(\.description) ?? "not reaped")\(timedOut ? " (timed out, killed)" : ""); "
                + "stdout \(standardOutput.count) bytes; stderr: \(stderr.prefix(2000))"
        }

        static func lines(_ text: String) -> [String] {
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            return lines
        }
    }

    /// Why a child could not be started.
    struct StartError: Error, CustomStringConvertible {
        var executable: String
        var reason: String
        var description: String { "cannot start \(executable): \(reason)" }
    }

    /// The child's process id.
    let pid: Int32
    /// The command line, for messages.
    let command: String
    /// Kept so that Foundation's bookkeeping of the child (its termination handler) lives
    /// as long as we do.
    private let process: Process
    private let exit: ExitRecord
    private let standardOutput: OutputCollector?
    private let standardError: OutputCollector

    /// Starts `executable` with exactly `arguments` and `environment` (nothing inherited).
    static func start(
        executable: String, arguments: [String], environment: [String: String],
        currentDirectory: String? = nil, input: Input = .none, output: Output = .captured
    ) throws -> TestChild {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }

        var stdinPipe: Pipe?
        switch input {
        case .none: process.standardInput = FileHandle.nullDevice
        case .bytes:
            let pipe = Pipe()
            stdinPipe = pipe
            process.standardInput = pipe
        case .descriptor(let fd): process.standardInput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        }
        var stdoutPipe: Pipe?
        switch output {
        case .captured, .capturedUntilFirstLine:
            let pipe = Pipe()
            stdoutPipe = pipe
            process.standardOutput = pipe
        case .descriptor(let fd): process.standardOutput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        }
        let stderrPipe = Pipe()
        process.standardError = stderrPipe

        let exit = ExitRecord()
        process.terminationHandler = { finished in
            exit.record(finished.terminationReason == .uncaughtSignal
                ? .signalled(finished.terminationStatus) : .exited(finished.terminationStatus))
        }
        do {
            try process.run()
        } catch {
            throw StartError(executable: executable, reason: "\(error)")
        }
        // Foundation closed the child's ends of the pipes; take our ends over as descriptors
        // of our own (close-on-exec, so no other child inherits them).
        let stdoutCollector: OutputCollector?
        let stderrCollector: OutputCollector
        do {
            var stopsAfterFirstLine = false
            if case .capturedUntilFirstLine = output { stopsAfterFirstLine = true }
            stdoutCollector = try stdoutPipe.map {
                try OutputCollector(taking: $0.fileHandleForReading, stopsAfterFirstLine: stopsAfterFirstLine)
            }
            stderrCollector = try OutputCollector(taking: stderrPipe.fileHandleForReading)
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
        if case .bytes(let bytes) = input, let stdinPipe {
            let handle = stdinPipe.fileHandleForWriting
            Thread.detachNewThread {
                // A child that exits without reading makes this fail with EPIPE: fine (the
                // test process may not ignore SIGPIPE, so write through the descriptor with
                // the signal blocked for this thread only).
                var blocked = sigset_t()
                sigemptyset(&blocked)
                sigaddset(&blocked, SIGPIPE)
                pthread_sigmask(SIG_BLOCK, &blocked, nil)
                _ = StandardOutput.write(bytes, to: handle.fileDescriptor)
                try? handle.close()
            }
        }
        return TestChild(
            process: process, command: ([executable] + arguments).joined(separator: " "), exit: exit,
            standardOutput: stdoutCollector, standardError: stderrCollector)
    }

    private init(
        process: Process, command: String, exit: ExitRecord, standardOutput: OutputCollector?,
        standardError: OutputCollector
    ) {
        self.process = process
        self.pid = process.processIdentifier
        self.command = command
        self.exit = exit
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    deinit {
        // The last line of defence: a test that forgot its child (or failed before
        // finishing it) must not leave it running.
        if exit.termination == nil { kill(pid, SIGKILL) }
        standardOutput?.close()
        standardError.close()
    }

    /// How the child ended, or `nil` while it runs.
    var termination: Termination? { exit.termination }

    /// Sends `signal` to the child, unless it has ended.
    func send(_ signal: Int32) {
        guard exit.termination == nil else { return }
        kill(pid, signal)
    }

    /// `SIGKILL`, unless it has ended.
    func killNow() { send(SIGKILL) }

    /// Waits until the child ends, at most `timeout`; `nil` when it still runs then.
    func waitForExit(timeout: Duration) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let termination = exit.termination { return termination }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The next line of standard output (without `\n`), waiting at most `timeout`; `nil`
    /// when none came in time or the output ended.
    func nextLine(timeout: Duration) async -> String? {
        guard let standardOutput else { return nil }
        let deadline = ContinuousClock.now + timeout
        while true {
            switch standardOutput.takeLine() {
            case .line(let line): return line
            case .ended: return nil
            case .notYet:
                if ContinuousClock.now >= deadline { return nil }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// Closes our end of the child's standard output, as `head -1` does once it has its
    /// line: the child's next write fails with `EPIPE`.
    func closeStandardOutput() {
        standardOutput?.close()
    }

    /// Standard error so far.
    var standardErrorSoFar: String { String(decoding: standardError.bytes, as: UTF8.self) }

    /// Waits for the child to end (killing it with `SIGKILL` when `timeout` passes first)
    /// and for its output to end (a grandchild may hold it open: not longer than 2 s).
    func finish(timeout: Duration) async -> Result {
        var timedOut = false
        var termination = await waitForExit(timeout: timeout)
        if termination == nil {
            timedOut = true
            killNow()
            termination = await waitForExit(timeout: .seconds(5))
        }
        let outputDeadline = ContinuousClock.now + .seconds(2)
        while !(standardOutput?.hasEnded ?? true) || !standardError.hasEnded, ContinuousClock.now < outputDeadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        standardOutput?.close()
        standardError.close()
        return Result(
            termination: termination, timedOut: timedOut, standardOutput: standardOutput?.bytes ?? [],
            standardError: standardError.bytes, command: command)
    }
}

#if canImport(Glibc)
private let closeDescriptor = Glibc.close
#elseif canImport(Darwin)
private let closeDescriptor = Darwin.close
#endif

/// How a child ended, set once by `Process`'s termination handler.
private final class ExitRecord: Sendable {
    private let state = Mutex<TestChild.Termination?>(nil)
    var termination: TestChild.Termination? { state.withLock { $0 } }
    func record(_ termination: TestChild.Termination) { state.withLock { $0 = termination } }
}

/// Reads one pipe on a thread of its own until end of file or ``close()``, keeping every
/// byte (or, when `stopsAfterFirstLine`, only the chunks up to the first line). The thread
/// polls with a short timeout, so a close is noticed promptly and the descriptor is closed
/// by that thread only (never while it reads it).
private final class OutputCollector: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var ended = false
        var closeRequested = false
        /// How much ``takeLine()`` has consumed.
        var lineOffset = 0
    }

    enum LineResult { case line(String), notYet, ended }

    private let state = Mutex(State())
    private let descriptor: Int32
    private let stopsAfterFirstLine: Bool

    /// Takes over the descriptor of `handle` (a copy that closes on exec; the handle
    /// itself is closed).
    init(taking handle: FileHandle, stopsAfterFirstLine: Bool = false) throws {
        let copy = fcntl(handle.fileDescriptor, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else {
            throw TestChild.StartError(executable: "pipe", reason: String(cString: strerror(errno)))
        }
        try? handle.close()
        descriptor = copy
        self.stopsAfterFirstLine = stopsAfterFirstLine
        Thread.detachNewThread { [self] in pump() }
    }

    var bytes: [UInt8] { state.withLock { $0.bytes } }
    var hasEnded: Bool { state.withLock { $0.ended } }

    func close() { state.withLock { $0.closeRequested = true } }

    func takeLine() -> LineResult {
        state.withLock { state in
            let unread = state.bytes[state.lineOffset...]
            if let newline = unread.firstIndex(of: 0x0A) {
                let line = String(decoding: state.bytes[state.lineOffset..<newline], as: UTF8.self)
                state.lineOffset = newline + 1
                return .line(line)
            }
            return state.ended || state.closeRequested ? .ended : .notYet
        }
    }

    private func pump() {
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 65536)
        reading: while !state.withLock({ $0.closeRequested }) {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, 50)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 { continue }
            let count = read(descriptor, &buffer, buffer.count)
            if count > 0 {
                state.withLock { $0.bytes.append(contentsOf: buffer[0..<count]) }
                if stopsAfterFirstLine, buffer[0..<count].contains(0x0A) {
                    // Hold the descriptor open, unread, until told to close it.
                    while !state.withLock({ $0.closeRequested }) { usleep(20_000) }
                    break reading
                }
            } else if count == 0 {
                break reading
            } else if errno != EINTR, errno != EAGAIN {
                break reading
            }
        }
        _ = closeDescriptor(descriptor)
        state.withLock { $0.ended = true }
    }
}

// MARK: - The chatbridge binary

/// The `chatbridge` executable this test run built, and the ways tests run it.
enum ChatBridgeCLI {
    /// Where the binary is: next to the test bundle (`.build/debug/chatbridgePackageTests.xctest`
    /// on Linux, `.build/debug/chatbridge`), else `<package>/.build/debug/chatbridge`.
    static let executablePath: String = locateExecutable()

    static func locateExecutable(testSourceFile: String = #filePath) -> String {
        var candidates: [String] = []
        for bundle in [Bundle.main] + Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append((bundle.bundlePath as NSString).deletingLastPathComponent + "/chatbridge")
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        candidates.append(runner.deletingLastPathComponent().appendingPathComponent("chatbridge").path)
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("chatbridge").path)
        }
        // Tests/ChatBridgeTests/<this file> -> the package root.
        let packageRoot = URL(fileURLWithPath: testSourceFile).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/chatbridge").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    /// The environment children get: this process's, without any `CHATBRIDGE_*` or
    /// `UNIPILE_*` variable (a developer's own settings must not leak in), plus `extra`.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("CHATBRIDGE_") && !$0.key.hasPrefix("UNIPILE_")
        }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Starts `chatbridge ARGUMENTS`; the caller must finish or kill it (prefer
    /// ``withStarted(_:environment:input:_:)``).
    static func start(
        _ arguments: [String], environment: [String: String] = [:], input: TestChild.Input = .none,
        output: TestChild.Output = .captured
    ) throws -> TestChild {
        try TestChild.start(
            executable: executablePath, arguments: arguments, environment: Self.environment(environment),
            input: input, output: output)
    }

    /// Runs `chatbridge ARGUMENTS` to its end; past `timeout` it is killed (and the result
    /// says so).
    static func run(
        _ arguments: [String], environment: [String: String] = [:], input: TestChild.Input = .none,
        timeout: Duration = .seconds(30)
    ) async throws -> TestChild.Result {
        let child = try start(arguments, environment: environment, input: input)
        return await child.finish(timeout: timeout)
    }

    /// Starts `chatbridge ARGUMENTS`, runs `body` with it, and kills it afterwards if it
    /// still runs, whether `body` returned or threw.
    static func withStarted<T>(
        _ arguments: [String], environment: [String: String] = [:], input: TestChild.Input = .none,
        output: TestChild.Output = .captured, _ body: (TestChild) async throws -> T
    ) async throws -> T {
        let child = try start(arguments, environment: environment, input: input, output: output)
        defer { child.killNow() }
        let result = try await body(child)
        return result
    }
}

// MARK: - A config folder

/// A temp folder holding `chatbridge.yaml` (not in a `config/` folder, so relative paths
/// in it are relative to the folder itself), optional rule files under `rules/`, and the
/// environment its `${VAR}`s need; runs `chatbridge` subcommands with `--config` set.
///
/// ```swift
/// let workspace = try CLIWorkspace(config: CLIWorkspace.sourceYAML(url: simulator.baseURL),
///                                  environment: ["E2E_API_KEY": key])
/// let result = try await workspace.run(["run", "--once"])
/// let events = try await workspace.storedEvents()
/// ```
struct CLIWorkspace: Sendable {
    let directory: TemporaryDirectory
    let configPath: String
    let environment: [String: String]

    init(config: String, rules: [String: String] = [:], environment: [String: String] = [:]) throws {
        directory = TemporaryDirectory("chatbridge-e2e")
        configPath = directory.file("chatbridge.yaml")
        self.environment = environment
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        if !rules.isEmpty {
            try FileManager.default.createDirectory(atPath: directory.file("rules"), withIntermediateDirectories: true)
            for (name, text) in rules {
                try Data(text.utf8).write(to: URL(fileURLWithPath: directory.file("rules/\(name)")))
            }
        }
    }

    /// A `sources:` list with one source `main`, its key from `${E2E_API_KEY}`, no rate limit.
    static func sourceYAML(url: String, interval: String = "200ms", pageSize: Int = 250, timeout: String = "5s") -> String {
        """
        sources:
          - name: main
            url: \(url)
            api_key: ${E2E_API_KEY}
            interval: \(interval)
            page_size: \(pageSize)
            timeout: \(timeout)
            max_requests_per_second: 0
        store: state/chatbridge.sqlite

        """
    }

    /// `chatbridge ARGUMENTS --config FILE` to its end.
    func run(
        _ arguments: [String], extraEnvironment: [String: String] = [:], input: TestChild.Input = .none,
        timeout: Duration = .seconds(30)
    ) async throws -> TestChild.Result {
        try await ChatBridgeCLI.run(
            arguments + ["--config", configPath], environment: environment.merging(extraEnvironment) { _, new in new },
            input: input, timeout: timeout)
    }

    /// Starts `chatbridge ARGUMENTS --config FILE`; the caller finishes or kills it.
    func start(_ arguments: [String], output: TestChild.Output = .captured) throws -> TestChild {
        try ChatBridgeCLI.start(arguments + ["--config", configPath], environment: environment, output: output)
    }

    /// As ``start(_:output:)``, killing the child after `body` if it still runs.
    func withStarted<T>(
        _ arguments: [String], output: TestChild.Output = .captured, _ body: (TestChild) async throws -> T
    ) async throws -> T {
        try await ChatBridgeCLI.withStarted(
            arguments + ["--config", configPath], environment: environment, output: output, body)
    }

    /// The JSON lines a read-only command prints; it must exit 0.
    func jsonLines(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [JSONValue] {
        let result = try await run(arguments, timeout: .seconds(20))
        try #require(result.exitStatus == 0, "\(result)", sourceLocation: sourceLocation)
        return try result.stdoutLines.map { try JSONValue.parse($0) }
    }

    /// `chatbridge events FILTERS`.
    func storedEvents(_ filters: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [JSONValue] {
        try await jsonLines(["events"] + filters, sourceLocation: sourceLocation)
    }

    /// `chatbridge deliveries FILTERS`.
    func deliveries(_ filters: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [JSONValue] {
        try await jsonLines(["deliveries"] + filters, sourceLocation: sourceLocation)
    }
}

/// Checks `condition` every `interval` until it holds or `timeout` passes; whether it held.
func eventually(
    timeout: Duration, interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}

extension JSONValue {
    /// The strings of an array value (`kinds`).
    var stringArray: [String] { arrayValue?.compactMap(\.stringValue) ?? [] }
}

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
