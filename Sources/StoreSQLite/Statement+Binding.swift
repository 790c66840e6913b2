import Foundation
import GRDB
import GRDBSQLite

/// Values bound straight through the SQLite C API, for the statements a poll runs once
/// per chat (a baseline's 100,000 inserts).
///
/// GRDB's `StatementArguments` box every value in an existential inside an array, which
/// for a six-column insert costs more than SQLite's own work on the row. These bind each
/// value where it is and step the statement once:
///
/// ```swift
/// let insert = try db.cachedStatement(sql: "INSERT INTO chat_bodies (source, raw) VALUES (?, ?)")
/// insert.bind(source, at: 1)
/// insert.bind(raw, at: 2)
/// try insert.runOnce(db)
/// ```
///
/// Use them only on statements that are never given GRDB arguments as well.
extension Statement {
    /// SQLite copies the value before the bind call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    func bind(_ text: String, at index: Int32) {
        // A native string's bytes in place (no copy of the string, no retain).
        let bound: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
            _ = sqlite3_bind_text(sqliteStatement, index, bytes.baseAddress, Int32(bytes.count), Self.transient)
        }
        guard bound == nil else { return }
        var text = text
        text.withUTF8 { bytes in
            _ = sqlite3_bind_text(sqliteStatement, index, bytes.baseAddress, Int32(bytes.count), Self.transient)
        }
    }

    func bind(_ text: String?, at index: Int32) {
        if let text { bind(text, at: index) } else { sqlite3_bind_null(sqliteStatement, index) }
    }

    /// Binds UTF-8 `bytes` as text (JSON that was just encoded, without a `String` of it).
    func bind(utf8 bytes: [UInt8], at index: Int32) {
        bytes.withUnsafeBytes { bind(utf8: $0, at: index) }
    }

    /// Binds UTF-8 `bytes` as text, copied before this returns (an id read in place).
    func bind(utf8 bytes: UnsafeRawBufferPointer, at index: Int32) {
        _ = sqlite3_bind_text(
            sqliteStatement, index, (bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1))?.assumingMemoryBound(to: CChar.self),
            Int32(bytes.count), Self.transient)
    }

    func bind(_ bytes: Data, at index: Int32) {
        bytes.withUnsafeBytes { buffer in
            // A zero-length blob is still a blob, not NULL: SQLite needs a non-nil pointer.
            _ = sqlite3_bind_blob(
                sqliteStatement, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count),
                Self.transient)
        }
    }

    func bind(_ value: Int64, at index: Int32) {
        sqlite3_bind_int64(sqliteStatement, index, value)
    }

    func bind(_ value: Double, at index: Int32) {
        sqlite3_bind_double(sqliteStatement, index, value)
    }

    /// Runs the statement with the values bound since the last run, and makes it ready
    /// for the next ones. Throws the `DatabaseError` that SQLite reported (a constraint,
    /// a full disk…), naming the statement.
    func runOnce(_ db: Database) throws {
        let code = sqlite3_step(sqliteStatement)
        guard code == SQLITE_DONE || code == SQLITE_ROW else {
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(sqliteStatement)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
        sqlite3_reset(sqliteStatement)
    }
}
