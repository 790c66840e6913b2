import Foundation
import GRDB
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the file system says about a path, as the store's diagnosis needs it; passed in,
/// so that the diagnosis is tested with plain values (root passes every permission check).
package struct StoreFileProbe: Sendable {
    package enum Kind: Sendable { case missing, file, folder, other }
    package var kind: @Sendable (_ path: String) -> Kind
    /// Whether this process may write to (and, for a folder, create files in) `path`.
    package var isWritable: @Sendable (_ path: String) -> Bool
    /// Whether this process may read `path`.
    package var isReadable: @Sendable (_ path: String) -> Bool

    package init(
        kind: @escaping @Sendable (_ path: String) -> Kind, isWritable: @escaping @Sendable (_ path: String) -> Bool,
        isReadable: @escaping @Sendable (_ path: String) -> Bool
    ) {
        self.kind = kind
        self.isWritable = isWritable
        self.isReadable = isReadable
    }

    /// The real file system, through `stat(2)` and `access(2)`.
    package static let system = StoreFileProbe(
        kind: { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return .missing }
            switch info.st_mode & S_IFMT {
            case S_IFREG: return .file
            case S_IFDIR: return .folder
            default: return .other
            }
        },
        isWritable: { path in
            var info = stat()
            let isFolder = stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            return access(path, isFolder ? W_OK | X_OK : W_OK) == 0
        },
        isReadable: { path in access(path, R_OK) == 0 })
}

extension SQLiteStore {
    /// Why the store at `path` cannot be opened for writing, in words a person acts on,
    /// or `nil` when nothing in the file system stands in the way.
    ///
    /// ```swift
    /// SQLiteStore.problem(path: "state/chatbridge.sqlite", probe: .system)
    /// // "cannot create state/chatbridge.sqlite: permission denied (folder state/ is read-only)"
    /// ```
    package static func problem(path: String, probe: StoreFileProbe) -> String? {
        let folder = folderOf(path)
        switch probe.kind(path) {
        case .folder:
            return "cannot open \(path): it is a folder, not a store file"
        case .other:
            return "cannot open \(path): it is not a regular file"
        case .file:
            if !probe.isReadable(path) || !probe.isWritable(path) {
                return "cannot open \(path): permission denied (the file is not readable and writable by this user)"
            }
            if !probe.isWritable(folder) {
                return "cannot open \(path): permission denied (folder \(folder)/ is read-only; SQLite writes its -wal and -shm files beside the store)"
            }
            return nil
        case .missing:
            let existing = nearestExisting(above: path, probe: probe)
            switch probe.kind(existing) {
            case .folder:
                if !probe.isWritable(existing) {
                    return "cannot create \(path): permission denied (folder \(existing)/ is read-only)"
                }
                return nil
            case .missing:
                return "cannot create \(path): folder \(existing)/ does not exist"
            case .file, .other:
                return "cannot create \(path): \(existing) is a file, not a folder"
            }
        }
    }

    /// The folder of `path` (`.` for a bare file name).
    static func folderOf(_ path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    /// The nearest part of the path above `path` that exists (`path`'s folder, else its
    /// folder's, and so on up): whether the missing ones can be made depends on it.
    static func nearestExisting(above path: String, probe: StoreFileProbe) -> String {
        var existing = folderOf(path)
        while probe.kind(existing) == .missing, existing != "/", existing != "." {
            existing = folderOf(existing)
        }
        return existing
    }

    /// Makes the store's folder (`0700`) and an empty store file (`0600`) when missing.
    static func prepareFiles(path: String, probe: StoreFileProbe = .system) throws(StoreError) {
        if let problem = problem(path: path, probe: probe) { throw StoreError(path: path, message: problem, namesPath: true) }
        let folder = folderOf(path)
        if probe.kind(folder) == .missing {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError(path: path, message: "cannot create its folder \(folder): \(reason(error))")
            }
        }
        if probe.kind(path) == .missing {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor >= 0 {
                close(descriptor)
            } else if errno != EEXIST {
                throw StoreError(path: path, message: "cannot create \(path): \(String(cString: strerror(errno)))", namesPath: true)
            }
        }
    }

    /// A failure to open the store, with the file system's reason when it has one and
    /// SQLite's words otherwise; never a Foundation error dump.
    static func openingError(path: String, _ error: any Error, readOnly: Bool) -> StoreError {
        // Missing: not written yet, unless something in the path means `run` cannot write it
        // (the nearest part of it that exists is not a folder).
        let probe = StoreFileProbe.system
        if readOnly, probe.kind(path) == .missing, probe.kind(nearestExisting(above: path, probe: probe)) == .folder {
            return StoreError(path: path, message: "no store at \(path) yet: `chatbridge run` creates it", namesPath: true)
        }
        if let problem = problem(path: path, probe: .system) { return StoreError(path: path, message: problem, namesPath: true) }
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_NOTADB {
            return StoreError(path: path, message: "\(path) is not a chatbridge store (not an SQLite database)", namesPath: true)
        }
        return StoreError(path: path, message: reason(error))
    }

}
