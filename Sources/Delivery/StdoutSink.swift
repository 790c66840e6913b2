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

/// The `stdout` sink: one compact JSON line per delivery (the event, with `rule` when a
/// rule matched), written and flushed one at a time.
///
/// Lines go straight to the file descriptor with `write(2)`, no buffer in between, so a
/// line is out (or the pipe is full) when the delivery is recorded. A write that may wait
/// runs on a serial dispatch queue of its own (an "overcommit" queue: it gets a thread of
/// its own when it needs one): a reader that stops reading (`| less`) blocks that queue,
/// never a thread of Swift's cooperative pool nor of `DispatchQueue.global()`, and lines
/// never interleave. A write that cannot wait (to a file; to a pipe with room for the
/// line, when the line is at most `PIPE_BUF` bytes and standard error does not share the
/// pipe) is made at once, without the two thread hops.
///
/// A closed reader (`chatbridge run | head -3`) makes `write` fail with `EPIPE` (the
/// process ignores `SIGPIPE`, which the command line arranges): the sink answers
/// ``DeliveryOutcome/outputClosed``, the delivery stays pending and the dispatcher stops.
///
/// ```swift
/// let sink = StdoutSink()                       // file descriptor 1
/// let test = StdoutSink(fileDescriptor: pipeWriteEnd)
/// ```
package struct StdoutSink: DeliverySink {
    private let fileDescriptor: Int32
    private let queue: DispatchQueue
    /// What the descriptor is, as far as waiting goes (read once: it does not change).
    private let kind: OutputKind
    /// How many lines the queue has taken and not yet written: while there are any, a line
    /// waits its turn on the queue too, so that lines never interleave.
    private let queued = Gate()

    private final class Gate: Sendable {
        let count = Mutex(0)
    }

    /// - Parameter fileDescriptor: where lines go; 1 (standard output) unless a test
    ///   hands in a pipe. The sink never closes it.
    package init(fileDescriptor: Int32 = 1) {
        self.fileDescriptor = fileDescriptor
        self.queue = DispatchQueue(label: "chatbridge.stdout-sink")
        self.kind = OutputKind(of: fileDescriptor)
    }

    /// Where lines go, for whether a line can be written without waiting on a reader.
    enum OutputKind: Equatable {
        /// A regular file: a write never waits on a reader.
        case file
        /// A pipe (or FIFO) that this process writes nothing else to.
        case pipe
        /// A terminal, a socket, a pipe standard error shares (`2>&1`): lines always go
        /// through the sink's queue.
        case other

        init(of fileDescriptor: Int32) {
            var status = stat()
            guard fstat(fileDescriptor, &status) == 0 else { self = .other; return }
            switch status.st_mode & S_IFMT {
            case S_IFREG:
                self = .file
            case S_IFIFO:
                // Standard error into the same pipe: a log line written between the check
                // and the write could take the room the check saw.
                var errorStatus = stat()
                let shared = fileDescriptor != 2 && fstat(2, &errorStatus) == 0
                    && errorStatus.st_dev == status.st_dev && errorStatus.st_ino == status.st_ino
                self = shared ? .other : .pipe
            default:
                self = .other
            }
        }
    }

    /// Whether `count` bytes can be written now without waiting: to a file always; to a
    /// pipe when it has room for them (`poll` says writable, so a page of the pipe is free,
    /// and the line is at most `PIPE_BUF` bytes, which a pipe takes whole in one write).
    func canWriteWithoutWaiting(_ count: Int) -> Bool {
        switch kind {
        case .file:
            return true
        case .pipe:
            guard count <= Int(PIPE_BUF) else { return false }
            var poller = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
            return poll(&poller, 1, 0) == 1 && poller.revents & Int16(POLLOUT) != 0
                && poller.revents & Int16(POLLERR | POLLHUP) == 0
        case .other:
            return false
        }
    }

    /// Lines come out one at a time, in the order they are attempted.
    package var maximumConcurrency: Int? { 1 }

    /// A line is the stored text with `rule` spliced in: nothing needs the event parsed.
    package var readsParsedEvent: Bool { false }

    package func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome {
        var line = request.eventWithRuleBytes
        line.append(UInt8(ascii: "\n"))
        let fileDescriptor = fileDescriptor
        let sink = request.sink
        let bytes = line
        let written = queued.count.withLock { count -> DeliveryOutcome? in
            // The write cannot wait on the reader and no line waits on the queue: done
            // here, without a hop to the queue and back.
            guard count == 0, canWriteWithoutWaiting(bytes.count) else {
                count += 1
                return nil
            }
            return Self.writeAll(bytes, to: fileDescriptor, sink: sink)
        }
        if let written { return written }
        let queued = queued
        return await withCheckedContinuation { continuation in
            queue.async {
                let outcome = Self.writeAll(bytes, to: fileDescriptor, sink: sink)
                queued.count.withLock { $0 -= 1 }
                continuation.resume(returning: outcome)
            }
        }
    }

    /// Writes every byte, through partial writes and `EINTR`.
    static func writeAll(_ bytes: [UInt8], to fileDescriptor: Int32, sink: String) -> DeliveryOutcome {
        bytes.withUnsafeBytes { buffer -> DeliveryOutcome in
            var offset = 0
            while offset < buffer.count {
                let written = write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written >= 0 {
                    offset += written
                    continue
                }
                let code = errno
                switch code {
                case EINTR:
                    continue
                case EAGAIN:
                    // A non-blocking descriptor that is full: wait until it can take more.
                    var poller = pollfd(fd: fileDescriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&poller, 1, 1000)
                case EPIPE:
                    // A line cut in half cannot be taken back; the reader is gone anyway.
                    return .outputClosed
                default:
                    return .retry(status: nil, error: "sink \(sink): write failed: \(String(cString: strerror(code)))")
                }
            }
            return .delivered(status: nil)
        }
    }
}
