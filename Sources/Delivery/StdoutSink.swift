import Dispatch
import Foundation

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
/// line is out (or the pipe is full) when the delivery is recorded. Writes run on a
/// serial dispatch queue of their own (an "overcommit" queue: it gets a thread of its own
/// when it needs one): a reader that stops reading (`| less`) blocks that queue, never a
/// thread of Swift's cooperative pool nor of `DispatchQueue.global()`, and lines never
/// interleave.
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

    /// - Parameter fileDescriptor: where lines go; 1 (standard output) unless a test
    ///   hands in a pipe. The sink never closes it.
    package init(fileDescriptor: Int32 = 1) {
        self.fileDescriptor = fileDescriptor
        self.queue = DispatchQueue(label: "chatbridge.stdout-sink")
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
        return await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Self.writeAll(bytes, to: fileDescriptor, sink: sink))
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
