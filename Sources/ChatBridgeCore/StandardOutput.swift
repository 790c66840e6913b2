import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes whole lines to a file descriptor (standard output by default), unbuffered,
/// so that `chatbridge run | jq` sees each event as soon as it is delivered.
///
/// The process ignores SIGPIPE (the CLI does so at start), so a reader that went away
/// (`| head -1`) shows up here as a failed write, not as a killed process.
package enum StandardOutput {
    /// Writes all of `bytes`, retrying on interruption and partial writes.
    /// Returns `false` when the descriptor is closed (EPIPE) or otherwise unwritable.
    @discardableResult
    package static func write(_ bytes: [UInt8], to descriptor: Int32 = 1) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }

    /// Makes writes to a closed pipe fail with EPIPE instead of killing the process.
    package static func ignoreBrokenPipeSignal() {
        signal(SIGPIPE, SIG_IGN)
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
