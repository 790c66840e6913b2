import Foundation
import Testing
@testable import ChatBridgeCore

// `rules check` (systemd's ExecStartPre) checks that `run` can write a SQLite store, and
// leaves a PostgreSQL store alone: it has no file.

extension EndToEndTests {
    @Suite("CLI: rules check and the store", .timeLimit(.minutes(1)))
    struct CLIRulesCheckStoreTests {
        let rule = ["r.yaml": "name: r\nwhen: \"true\"\n"]

        @Test func aStoreBehindAFileIsAProblemAndNothingIsCreated() async throws {
            let probe = try CLIWorkspace(config: "", rules: rule)
            let blocker = probe.directory.file("blocker")
            try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
            let workspace = try CLIWorkspace(
                config: CLIWorkspace.sourceYAML(url: "http://127.0.0.1:1")
                    .replacingOccurrences(of: "store: state/chatbridge.sqlite", with: "store: \(blocker)/state/chatbridge.sqlite"),
                rules: rule, environment: ["E2E_API_KEY": "k"])
            let check = try await workspace.run(["rules", "check"])
            #expect(check.exitStatus == 2, "\(check.stderr)")
            #expect(check.stderr.contains("cannot create \(blocker)/state/chatbridge.sqlite: \(blocker) is a file, not a folder"))
        }

        @Test func aPostgreSQLStoreIsNotTakenForAFile() async throws {
            let workspace = try CLIWorkspace(
                config: CLIWorkspace.sourceYAML(url: "http://127.0.0.1:1").replacingOccurrences(
                    of: "store: state/chatbridge.sqlite", with: "store: postgres://bridge:${PG_PASSWORD}@127.0.0.1:1/chatbridge"),
                rules: rule, environment: ["E2E_API_KEY": "k", "PG_PASSWORD": "hunter2"])
            let check = try await workspace.run(["rules", "check"])
            #expect(check.exitStatus == 0, "\(check.stderr)")
            #expect(!check.stderr.contains("cannot create"))
            #expect(!FileManager.default.fileExists(atPath: workspace.directory.file("postgres:")))
            #expect(!check.stderr.contains("hunter2"))
        }
    }
}
