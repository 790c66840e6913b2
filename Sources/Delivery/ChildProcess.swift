import ChatBridgeCore
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one child process to completion with bounded time, writing its standard input
/// and keeping the end of its output: the engine of ``ExecSink``.
///
/// - The child is started with `posix_spawn`, never through a shell (unless the program
///   *is* `/bin/sh`), in a process group of its own, with the default disposition of
///   `SIGPIPE` and the other common signals restored (chatbridge ignores `SIGPIPE`; a
///   child must not inherit that) and an empty signal mask.
/// - It gets only descriptors 0, 1, 2: the standard input pipe, and one pipe we read as
///   both its standard output and standard error (a child must not write into the JSON
///   lines of the `stdout` sink, nor raw into chatbridge's logs). Every other descriptor
///   is closed.
/// - Past `timeout` its process group gets `SIGTERM`, then `SIGKILL` after `killGrace`.
/// - It is always reaped (no zombies); pipes are always closed (no leaked descriptors).
/// - No thread of Swift's cooperative pool blocks: waiting and pipe I/O run on threads of
///   their own (not on `DispatchQueue.global()`, whose few threads would all be taken by
///   waiting children, starving every timer), and pipe I/O polls with a short timeout so
///   that it always ends.
struct ChildProcess {
    var executable: String
    /// The full argument vector, `arguments[0]` being the program's name as it sees it.
    var arguments: [String]
    var environment: [String: String]
    var standardInput: [UInt8]
    var timeout: Duration
    var killGrace: Duration
    /// The most of the output kept, from its end (where a failing command says why); the
    /// rest is read and dropped.
    var standardErrorLimit: Int = 1024

    enum Termination: Sendable, Hashable {
        case exited(Int32)
        case signalled(Int32)
        /// Someone else reaped the child (a `waitpid(-1)` elsewhere in the process).
        case unknown
    }

    struct Result: Sendable {
        var termination: Termination
        /// Whether `timeout` passed and the child was signalled for it.
        var timedOut: Bool
        /// Whether the task was cancelled and the child signalled for it.
        var cancelled: Bool
        var standardError: [UInt8]
    }

    struct SpawnError: Error, CustomStringConvertible {
        var executable: String
        var code: Int32
        var description: String { "cannot run \(executable): \(String(cString: strerror(code)))" }
    }

    /// Starts the child and waits for it (and for its standard error to end, within a
    /// short linger after its exit).
    func run() async throws(SpawnError) -> Result {
        let stdinPipe = try Self.makePipe(executable: executable)
        let stderrPipe: (read: Int32, write: Int32)
        do {
            stderrPipe = try Self.makePipe(executable: executable)
        } catch {
            close(stdinPipe.read)
            close(stdinPipe.write)
            throw error
        }
        let pid: pid_t
        do {
            pid = try spawn(stdin: stdinPipe.read, stderr: stderrPipe.write)
        } catch {
            for fd in [stdinPipe.read, stdinPipe.write, stderrPipe.read, stderrPipe.write] { close(fd) }
            throw error
        }
        // The child holds its own copies now.
        close(stdinPipe.read)
        close(stderrPipe.write)

        let watcher = ExitWatcher(pid: pid)
        let pump = PipePump(
            input: stdinPipe.write, bytes: standardInput, output: stderrPipe.read, limit: standardErrorLimit)
        async let pumped = pump.run()

        var timedOut = false
        var stopped = false
        // Cancellation (shutdown, the end of a drain) cuts the attempt short the same way
        // a timeout does; the grace and the final wait are not cancellable, so the child
        // is always stopped and reaped.
        var status = await watcher.wait(timeout: timeout, cancellable: true)
        if status == nil {
            stopped = true
            timedOut = !Task.isCancelled
            watcher.signalGroup(SIGTERM)
            status = await watcher.wait(timeout: killGrace)
            if status == nil {
                watcher.signalGroup(SIGKILL)
                status = await watcher.wait(timeout: nil)
            }
        }
        // A grandchild may keep standard error open; give it a moment, not forever.
        pump.stop(after: .milliseconds(500))
        let standardError = await pumped
        return Result(
            termination: Self.termination(status ?? 0), timedOut: timedOut, cancelled: stopped && !timedOut,
            standardError: standardError)
    }

    // MARK: Spawning

    private func spawn(stdin: Int32, stderr: Int32) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        // Standard output joins standard error in the pipe we read: copied to our own
        // standard error, a command echoing chat content would write raw text (escape
        // sequences, forged log lines) into chatbridge's log stream.
        posix_spawn_file_actions_adddup2(&actions, stderr, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        if let closeFrom = Self.closeFrom {
            _ = closeFrom(&actions, 3)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = arguments.map { Self.cString($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { Self.cString("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let code = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envpBuffer in
                executable.contains("/")
                    ? posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, envpBuffer.baseAddress!)
                    : posix_spawnp(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, envpBuffer.baseAddress!)
            }
        }
        guard code == 0 else { throw SpawnError(executable: executable, code: code) }
        return pid
    }

    /// A C string of `text`; NUL bytes (which would silently cut it) are dropped.
    private static func cString(_ text: String) -> UnsafeMutablePointer<CChar>? {
        let cleaned = text.contains("\0") ? text.replacingOccurrences(of: "\0", with: "") : text
        return strdup(cleaned)
    }

    private typealias CloseFromFunction = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private typealias Pipe2Function = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> Int32

    // glibc's GNU extensions are not in Swift's Glibc module; look them up once.
    private static let closeFrom: CloseFromFunction? = CLibrary.function(named: "posix_spawn_file_actions_addclosefrom_np")
    private static let pipe2: Pipe2Function? = CLibrary.function(named: "pipe2")

    /// A pipe whose ends close on exec (only the child's dup2 copies survive).
    private static func makePipe(executable: String) throws(SpawnError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        if let pipe2 {
            guard pipe2(&fds, O_CLOEXEC) == 0 else { throw SpawnError(executable: executable, code: errno) }
        } else {
            guard pipe(&fds) == 0 else { throw SpawnError(executable: executable, code: errno) }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        }
        return (fds[0], fds[1])
    }

    static func termination(_ status: Int32) -> Termination {
        if status == ExitWatcher.lostStatus { return .unknown }
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }
}

/// Waits for one child on a thread of its own and tells its status to whoever waits,
/// with or without a timeout.
///
/// The child is reaped only after the exit is noted under the lock, so ``signalGroup(_:)``
/// never signals a process id that was reaped and reused.
final class ExitWatcher: Sendable {
    private struct State {
        var status: Int32?
        var waiters: [UInt64: CheckedContinuation<Int32?, Never>] = [:]
        var nextWaiter: UInt64 = 0
        /// Waits whose task was cancelled before they began to wait.
        var cancelledWaiters: Set<UInt64> = []
    }

    let pid: pid_t
    private let state = Mutex(State())
    /// Not a wait status the kernel makes: the child's status could not be had.
    static let lostStatus = Int32.min

    init(pid: pid_t) {
        self.pid = pid
        Thread.detachNewThread { [self] in
            var info = siginfo_t()
            // Wait without reaping, note the exit, then reap: see signalGroup.
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0, errno == EINTR {}
            var status: Int32 = 0
            let waiters = state.withLock { state -> [CheckedContinuation<Int32?, Never>] in
                var result: pid_t
                repeat { result = waitpid(pid, &status, 0) } while result == -1 && errno == EINTR
                if result == -1 { status = Self.lostStatus }
                state.status = status
                defer { state.waiters.removeAll() }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
    }

    /// The wait status once the child has exited, or `nil` when `timeout` passes first
    /// (or, when `cancellable`, when the task is cancelled).
    func wait(timeout: Duration?, cancellable: Bool = false) async -> Int32? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let wait = {
            await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
                let waiting = self.state.withLock { state -> Bool in
                    if state.status != nil || state.cancelledWaiters.contains(id) { return false }
                    state.waiters[id] = continuation
                    return true
                }
                guard waiting else {
                    continuation.resume(returning: self.state.withLock { $0.status })
                    return
                }
                if let timeout {
                    let nanoseconds = Int(clamping: timeout.clampedNanoseconds)
                    DeliveryTimers.queue.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                        self.resume(id)
                    }
                }
            }
        }
        guard cancellable else { return await wait() }
        return await withTaskCancellationHandler(operation: wait) {
            state.withLock { _ = $0.cancelledWaiters.insert(id) }
            resume(id)
        }
    }

    /// Ends waiter `id`'s wait with `nil`, if it still waits.
    private func resume(_ id: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume(returning: nil)
    }

    /// Sends `signal` to the child's process group (the child and what it started), unless
    /// the child has exited already.
    func signalGroup(_ signal: Int32) {
        state.withLock { state in
            guard state.status == nil else { return }
            if kill(-pid, signal) != 0 { _ = kill(pid, signal) }
        }
    }
}

/// Writes the child's standard input and reads its standard error on a thread of its own,
/// with non-blocking descriptors and `poll`, until both are done or it is told to stop.
/// Closes both descriptors when it ends.
final class PipePump: Sendable {
    private let input: Int32
    private let bytes: [UInt8]
    private let output: Int32
    private let limit: Int
    private let stopped = Atomic<Bool>(false)

    init(input: Int32, bytes: [UInt8], output: Int32, limit: Int) {
        self.input = input
        self.bytes = bytes
        self.output = output
        self.limit = limit
    }

    /// Ends the pump `delay` from now, whatever is left to read or write.
    func stop(after delay: Duration) {
        let nanoseconds = Int(clamping: delay.clampedNanoseconds)
        DeliveryTimers.queue.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
            stopped.store(true, ordering: .releasing)
        }
    }

    /// The last `limit` bytes of the output.
    func run() async -> [UInt8] {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                continuation.resume(returning: pump())
            }
        }
    }

    private func pump() -> [UInt8] {
        for fd in [input, output] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        var inputOpen = true
        var outputOpen = true
        var offset = 0
        var kept: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        if bytes.isEmpty {
            close(input)
            inputOpen = false
        }
        while (inputOpen || outputOpen), !stopped.load(ordering: .acquiring) {
            var fds: [pollfd] = []
            if inputOpen { fds.append(pollfd(fd: input, events: Int16(POLLOUT), revents: 0)) }
            if outputOpen { fds.append(pollfd(fd: output, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), 100)
            if ready < 0, errno != EINTR { break }
            guard ready > 0 else { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == input {
                    let written = bytes.withUnsafeBytes { write(input, $0.baseAddress! + offset, $0.count - offset) }
                    if written > 0 {
                        offset += written
                    } else if written < 0, errno != EINTR, errno != EAGAIN {
                        offset = bytes.count // EPIPE: the child does not read its input; fine.
                    }
                    if offset >= bytes.count {
                        close(input)
                        inputOpen = false
                    }
                } else {
                    let count = read(output, &buffer, buffer.count)
                    if count > 0 {
                        keep(buffer.prefix(count), in: &kept)
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        close(output)
                        outputOpen = false
                    }
                }
            }
        }
        if inputOpen { close(input) }
        if outputOpen {
            // Stopped (the child has exited, or the grace is over): keep what is already in
            // the pipe, which a loaded machine may not have let the loop read in time.
            // Bounded, in case a grandchild keeps writing.
            for _ in 0..<64 {
                let count = read(output, &buffer, buffer.count)
                guard count > 0 else { break }
                keep(buffer.prefix(count), in: &kept)
            }
            close(output)
        }
        // The last `limit` bytes, from the start of a character.
        var tail = kept.suffix(limit)
        while let first = tail.first, first & 0xC0 == 0x80 { tail = tail.dropFirst() }
        return Array(tail)
    }

    /// Appends `bytes`, dropping from the front what is far past the `limit` kept.
    private func keep(_ bytes: ArraySlice<UInt8>, in kept: inout [UInt8]) {
        kept.append(contentsOf: bytes)
        if kept.count > 4 * limit { kept.removeFirst(kept.count - limit) }
    }
}

/// The queue that fires delivery timeouts (kill graces, pipe lingers).
///
/// A serial queue of its own rather than `DispatchQueue.global()`: the global queue has
/// about one thread per core, and if anything blocks them, timers would fire late. Its
/// handlers only resume a continuation or set a flag.
enum DeliveryTimers {
    static let queue = DispatchQueue(label: "chatbridge.delivery-timers")
}
