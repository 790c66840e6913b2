import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PostgresNIO
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Store
@testable import StorePostgres

/// The PostgreSQL server the tests use: `POSTGRES_TEST_URL`, which
/// `scripts/with-postgres.sh` (and so `.ci/run`) exports for a throwaway cluster.
///
/// Without it the PostgreSQL tests are left out with a message, except under `CI=true`,
/// where they run and fail: CI must never skip them silently.
enum TestPostgres {
    static let environment = ProcessInfo.processInfo.environment

    /// The server's URL, or `nil` when none is configured.
    static let url: PostgresStoreURL? = {
        guard let text = environment["POSTGRES_TEST_URL"], !text.isEmpty else { return nil }
        return try? PostgresStoreURL.parse(text, environment: environment)
    }()

    /// The URL as text, for child processes' configuration files.
    static var urlText: String? { environment["POSTGRES_TEST_URL"] }

    /// Whether the PostgreSQL tests take part in this run.
    static let isEnabled: Bool = {
        if url != nil { return true }
        if environment["CI"] == "true" { return true }  // they run, and fail with `missingServer`
        FileHandle.standardError.write(Data("""
            note: PostgreSQL store tests skipped: no server (set POSTGRES_TEST_URL, or run them \
            with scripts/with-postgres.sh swift test)\n
            """.utf8))
        return false
    }()

    struct MissingServer: Error, CustomStringConvertible {
        var description: String {
            "CI=true but POSTGRES_TEST_URL is not set: run the tests through scripts/with-postgres.sh"
        }
    }

    static func requireURL() throws -> PostgresStoreURL {
        guard let url else { throw MissingServer() }
        return url
    }

    /// The schema of the store kept "at" `location`: the same place gives the same schema
    /// (reopening is a restart), another place another schema.
    static func schema(for location: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in location.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return "cbt_" + String(hash, radix: 16)
    }

    /// Opens the store of `location` (a test's temporary folder) in a schema of its own,
    /// and drops the schemas of earlier tests whose folders are gone.
    static func openStore(
        at location: String, instance: String? = nil, lease: Duration = .seconds(30), claimDuration: Duration? = nil,
        logger: Logger = Logger(label: "chatbridge.postgres")
    ) async throws -> PostgresStore {
        let url = try requireURL()
        let schema = schema(for: location)
        try await registerAndSweep(schema: schema, folder: location, url: url)
        return try await PostgresStore.open(
            url: url, instance: instance, lease: lease, claimDuration: claimDuration, schema: schema, logger: logger)
    }

    /// Records which folder a schema belongs to, and drops the schemas of folders that no
    /// longer exist (their tests are over).
    private static func registerAndSweep(schema: String, folder: String, url: PostgresStoreURL) async throws {
        let configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password?.value, database: url.database,
            tls: .disable)
        let client = PostgresClient(configuration: configuration)
        let logger = Logger(label: "tests.postgres") { _ in SwiftLogNoOpLogHandler() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.withConnection { connection in
                // Tests run in parallel: one at a time here (CREATE TABLE IF NOT EXISTS races).
                try await connection.query("BEGIN", logger: logger)
                try await connection.query("SELECT pg_advisory_xact_lock(7411)", logger: logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS public.chatbridge_test_schemas (schema TEXT PRIMARY KEY, folder TEXT NOT NULL)
                    """, logger: logger)
                try await connection.query("""
                    INSERT INTO public.chatbridge_test_schemas (schema, folder) VALUES (\(schema), \(folder))
                    ON CONFLICT (schema) DO NOTHING
                    """, logger: logger)
                let rows = try await connection.query(
                    "SELECT schema, folder FROM public.chatbridge_test_schemas", logger: logger).collect()
                for row in rows {
                    let (stale, staleFolder) = try row.decode((String, String).self)
                    guard stale != schema, !FileManager.default.fileExists(atPath: staleFolder),
                          PostgresStore.isPlainIdentifier(stale)
                    else { continue }
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(stale) CASCADE"), logger: logger)
                    try await connection.query(
                        "DELETE FROM public.chatbridge_test_schemas WHERE schema = \(stale)", logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            }
        }
    }
}

extension TestPostgres {
    /// Runs `body` with the URL (as text) of a fresh database on the test server, dropped
    /// afterwards whatever happens: for tests whose child processes take a `store:` URL.
    static func withDatabase<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let url = try requireURL()
        let name = "cbt_db_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await administer(url) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        let text = "postgres://\(url.user)@\(url.host):\(url.port)/\(name)"
        do {
            let result = try await body(text)
            try? await dropDatabase(name, url: url)
            return result
        } catch {
            try? await dropDatabase(name, url: url)
            throw error
        }
    }

    private static func dropDatabase(_ name: String, url: PostgresStoreURL) async throws {
        try await administer(url) { connection, logger in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
    }

    /// One connection to the server's `url` database for housekeeping.
    static func administer(
        _ url: PostgresStoreURL, _ body: (PostgresConnection, Logger) async throws -> Void
    ) async throws {
        let configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password?.value, database: url.database,
            tls: .disable)
        let client = PostgresClient(configuration: configuration)
        let logger = Logger(label: "tests.postgres") { _ in SwiftLogNoOpLogHandler() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.withConnection { connection in try await body(connection, logger) }
        }
    }
}

/// A PostgreSQL cluster of a test's own, in a temporary folder, that the test may stop and
/// start (a database outage) without disturbing the other tests' server. Made with the
/// binaries `scripts/with-postgres.sh` found (`POSTGRES_TEST_BIN`); as root, as
/// the `postgres` user (initdb refuses root).
final class OwnPostgresCluster: Sendable {
    let folder: TemporaryDirectory
    let port: Int
    let binaries: String
    var url: String { "postgres://postgres@127.0.0.1:\(port)/postgres" }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    init() async throws {
        guard let binaries = TestPostgres.environment["POSTGRES_TEST_BIN"] else {
            throw Unavailable(description: "POSTGRES_TEST_BIN is not set: run through scripts/with-postgres.sh")
        }
        self.binaries = binaries
        folder = TemporaryDirectory("chatbridge-pg-own")
        port = try Self.freePort()
        if getuid() == 0 {
            _ = try await Self.command("/bin/chown", ["postgres:", folder.path])
            // The folder's parent is the system's temporary folder: postgres may enter it.
        }
        let initdb = try await runAsOwner("\(binaries)/initdb", ["-D", folder.file("data"), "-U", "postgres", "--auth=trust", "--no-sync"])
        guard initdb.exitStatus == 0 else { throw Unavailable(description: "initdb: \(initdb)") }
        try await start()
    }

    deinit {
        // Stop the server whatever happened (a blocking wait of at most 10 s).
        let stop = (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : [])
            + ["\(binaries)/pg_ctl", "-D", folder.file("data"), "-m", "immediate", "-w", "-t", "10", "stop"]
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = stop.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        if posix_spawn(&pid, stop[0], nil, nil, argv, nil) == 0 {
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }

    func start() async throws {
        let result = try await runAsOwner("\(binaries)/pg_ctl", [
            "-D", folder.file("data"), "-l", folder.file("server.log"), "-w", "-t", "30",
            "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(folder.path) -c fsync=off", "start",
        ])
        guard result.exitStatus == 0 else { throw Unavailable(description: "pg_ctl start: \(result)") }
    }

    func stop() async throws {
        let result = try await runAsOwner("\(binaries)/pg_ctl", ["-D", folder.file("data"), "-m", "fast", "-w", "stop"])
        guard result.exitStatus == 0 else { throw Unavailable(description: "pg_ctl stop: \(result)") }
    }

    private func runAsOwner(_ executable: String, _ arguments: [String]) async throws -> CommandResult {
        if getuid() == 0 {
            return try await Self.command("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments)
        }
        return try await Self.command(executable, arguments)
    }

    /// How a command ended, and its output (in a file of the cluster's folder).
    struct CommandResult: CustomStringConvertible {
        var exitStatus: Int32?
        var output: String
        var command: String
        var description: String { "`\(command)`: \(exitStatus.map { "exit \($0)" } ?? "did not end"): \(output.suffix(1500))" }
    }

    /// Runs a command with posix_spawn and waits for exactly that process (at most 40 s):
    /// pg_ctl leaves a server running that must not be mistaken for the command.
    private static func command(_ executable: String, _ arguments: [String]) async throws -> CommandResult {
        let outputPath = NSTemporaryDirectory() + "chatbridge-pg-cmd-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environment: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { environment.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environment)
        guard spawned == 0 else { throw Unavailable(description: "cannot start \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var exitStatus: Int32?
        let deadline = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < deadline {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return CommandResult(exitStatus: exitStatus, output: output, command: ([executable] + arguments).joined(separator: " "))
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Unavailable(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
