import GRDB

extension SQLiteStore {
    /// The table or index each page of the database file belongs to, by page number
    /// (the file's first page is 1), as SQLite's `dbstat` table reports them; pages on the
    /// free list are absent.
    ///
    /// For measuring what a write costs: `chatbridge-bench poll` compares the file's pages
    /// before and after a poll and names the b-trees whose pages it rewrote. It reads
    /// every page of the database.
    package func treeNamesByPage() async throws -> [Int: String] {
        try await pool.read { db in
            var names: [Int: String] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT name, pageno FROM dbstat")
            while let row = try rows.next() { names[row[1]] = row[0] }
            return names
        }
    }
}
