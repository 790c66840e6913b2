import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Runtime
@testable import Store

/// scale.md's configuration: `store: postgres://…`, `instance`, `lease`, and the password
/// that never shows.
@Suite("Config: a PostgreSQL store shared by instances")
struct PostgresConfigTests {
    static let sources = """
        sources:
          - name: main
            url: https://api1.unipile.com:13111
            api_key: sk-test-key

        """

    func parse(_ extra: String, environment: [String: String] = [:]) throws -> ChatBridgeConfiguration {
        try ChatBridgeConfiguration.parse(
            yaml: Self.sources + extra, file: "/srv/bridge/config/chatbridge.yaml", environment: environment)
    }

    func problems(_ extra: String, environment: [String: String] = [:]) -> [String] {
        do {
            _ = try parse(extra, environment: environment)
            Issue.record("expected configuration errors")
            return []
        } catch let error as ConfigurationError {
            return error.diagnostics.map { "\($0.line):\($0.column) \($0.message)" }
        } catch {
            Issue.record("unexpected \(error)")
            return []
        }
    }

    @Test func aPostgresURLWithThePasswordFromAVariable() throws {
        let configuration = try parse(
            "store: postgres://bridge:${PG_PASSWORD}@db.internal:6543/chatbridge?sslmode=require\ninstance: worker-1\nlease: 10s\n",
            environment: ["PG_PASSWORD": "p@ss/w:rd-7f3a"])
        let url = try #require(configuration.postgresStore)
        #expect(url.host == "db.internal")
        #expect(url.port == 6543)
        #expect(url.user == "bridge")
        #expect(url.password?.value == "p@ss/w:rd-7f3a")
        #expect(url.database == "chatbridge")
        #expect(url.tls == .require)
        #expect(configuration.instance == "worker-1")
        #expect(configuration.lease == .seconds(10))
        #expect(configuration.storePath == "postgres://bridge:***@db.internal:6543/chatbridge?sslmode=require")
        #expect(!"\(configuration)".contains("p@ss/w:rd-7f3a"), "the configuration's description hides the password")
        #expect(configuration.secretValues.contains("p@ss/w:rd-7f3a"), "the log redactor knows the password")
    }

    @Test func postgresqlSchemeDefaultsAndPGPASSWORD() throws {
        let configuration = try parse("store: postgresql://db.internal\n", environment: ["PGPASSWORD": "from-env-91c2"])
        let url = try #require(configuration.postgresStore)
        #expect(url.port == 5432)
        #expect(url.user == "postgres")
        #expect(url.database == "postgres")
        #expect(url.password?.value == "from-env-91c2")
        #expect(url.tls == .prefer)
        #expect(configuration.lease == .seconds(30), "30s by default")
        #expect(configuration.instance == nil, "HOST-PID by default, decided at run time")
        #expect(configuration.storePath == "postgres://postgres:***@db.internal:5432/postgres")
    }

    @Test func verifyModesAskForACheckedCertificate() throws {
        #expect(try parse("store: postgres://u@h/d?sslmode=verify-full\n").postgresStore?.tls == .verifyFull)
        #expect(try parse("store: postgres://u@h/d?sslmode=verify-ca\n").postgresStore?.tls == .verifyFull)
        #expect(try parse("store: postgres://u@h/d?sslmode=disable\n").postgresStore?.tls == .disable)
    }

    @Test func aSQLitePathStaysAPath() throws {
        let configuration = try parse("store: state/x.sqlite\nlease: 5s\n")
        #expect(configuration.postgresStore == nil)
        #expect(configuration.storePath == "/srv/bridge/state/x.sqlite")
    }

    @Test func mistakesAreReportedWithoutThePassword() {
        let found = problems("""
            store: postgres://u:hunter2-secret@db/x?sslmode=sometimes
            lease: 200ms
            instance: "two words"

            """)
        #expect(found.count == 3, "\(found)")
        #expect(found.contains { $0.contains("sslmode 'sometimes'") })
        #expect(found.contains { $0.contains("lease must be at least 1s") })
        #expect(found.contains { $0.contains("instance must be") })
        #expect(!found.joined().contains("hunter2-secret"))
        #expect(problems("store: postgres://u:pw@db/x?application_name=a\n").first?.contains("not supported") == true)
        #expect(problems("store: postgres:///x\n").first?.contains("no host") == true)
    }

    @Test func theURLIsShownWithStarsInsteadOfThePassword() throws {
        let url = try PostgresStoreURL.parse("postgres://a%40b:c%2Fd@[::1]:5433/db", environment: [:])
        #expect(url.user == "a@b")
        #expect(url.password?.value == "c/d")
        #expect(url.host == "::1")
        #expect(url.description == "postgres://a@b:***@[::1]:5433/db")
    }
}
