import Foundation
import Store
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one-writer lock of a SQLite store: `chatbridge run` holds it for as long as it
/// runs, so that a second `run` on the same store stops at once instead of polling the
/// API and dispatching twice.
///
/// It is a `flock(2)` on a file beside the store (`STORE.lock`), which holds the pid of
/// its holder for the message a second process shows. The kernel releases it when the
/// process dies, however it dies: a killed daemon never leaves a stale lock behind.
/// Read-only commands (`events`, `status`, …) and `replay` do not take it.
///
/// ```swift
/// let lock = try SQLiteWriterLock(storePath: "state/chatbridge.sqlite")
/// defer { lock.release() }
/// ```
package final class SQLiteWriterLock: Sendable {
    /// The lock file's path.
    package let path: String
    private let descriptor: Int32
    private let held = Mutex(true)

    /// Another process holds the lock, or the lock file cannot be made.
    package struct Unavailable: Error, CustomStringConvertible {
        package var storePath: String
        /// The holder's pid, when it wrote one.
        package var holder: Int32?
        /// Why the file could not be used, when that is the problem.
        package var reason: String?
        /// `reason` is the store's diagnosis (``SQLiteStore/problem(path:probe:)``), a
        /// sentence that names the path itself.
        package var isDiagnosis = false

        package var description: String {
            if let reason, isDiagnosis { return reason }
            if let reason { return "cannot lock store \(storePath): \(reason)" }
            let who = holder.map { "another chatbridge (pid \($0))" } ?? "another chatbridge"
            return "\(who) is running on \(storePath)"
        }
    }

    /// Takes the lock of the store at `storePath`, or throws at once when another
    /// process holds it.
    package init(storePath: String) throws(Unavailable) {
        path = storePath + ".lock"
        // What stands in the way in the file system, in the words `rules check` uses.
        if let problem = SQLiteStore.problem(path: storePath, probe: .system) {
            throw Unavailable(storePath: storePath, holder: nil, reason: problem, isDiagnosis: true)
        }
        let folder = (storePath as NSString).deletingLastPathComponent
        // The store's folder holds chat content: private, as `prepareFiles` makes it too
        // (the lock is taken first, so this is where a new folder is made).
        if !folder.isEmpty {
            try? FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Unavailable(storePath: storePath, holder: nil, reason: String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            let holder = Self.readHolder(descriptor)
            close(descriptor)
            if error == EWOULDBLOCK { throw Unavailable(storePath: storePath, holder: holder, reason: nil) }
            throw Unavailable(storePath: storePath, holder: nil, reason: String(cString: strerror(error)))
        }
        self.descriptor = descriptor
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    private static func readHolder(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Lets the lock go (the kernel does so too when the process ends).
    package func release() {
        guard held.withLock({ held in defer { held = false }; return held }) else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    deinit { release() }
}
