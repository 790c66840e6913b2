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
