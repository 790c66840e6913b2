import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Detect
import Formats
import Rules
import Runtime
import Store
import StoreSQLite
import Unipile
import Foundation
import Testing

/// A fresh folder under the system's temporary directory, removed by `cleanUp()`.
private struct ConfigTemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("chatbridge-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `text` to `relativePath`, creating folders, and returns the absolute path.
    @discardableResult
    func write(_ text: String, to relativePath: String) throws -> String {
        let file = path + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

private let sourceYAML = """
    sources:
      - name: main
        url: https://api1.unipile.com:13111
        api_key: k
    """

@Suite("Config loading and paths")
struct ConfigLoadTests {
    @Test("a file in a folder named config resolves paths against the folder above it")
    func configFolder() throws {
        let folder = try ConfigTemporaryFolder()
        defer { folder.cleanUp() }
        let file = try folder.write(sourceYAML + "\nstore: state/x.sqlite\nrules: rules/\n", to: "config/chatbridge.yaml")
        let configuration = try ChatBridgeConfiguration.load(path: file, environment: [:])
        #expect(configuration.file == file)
        #expect(configuration.baseDirectory == folder.path)
        #expect(configuration.storePath == folder.path + "/state/x.sqlite")
        #expect(configuration.rulesPath == folder.path + "/rules")
    }

    @Test("a file elsewhere resolves paths against its own folder")
    func otherFolder() throws {
        let folder = try ConfigTemporaryFolder()
        defer { folder.cleanUp() }
        let file = try folder.write(sourceYAML + "\nstore: ../db/x.sqlite\n", to: "etc/bridge.yaml")
        let configuration = try ChatBridgeConfiguration.load(path: file, environment: [:])
        #expect(configuration.baseDirectory == folder.path + "/etc")
        #expect(configuration.storePath == folder.path + "/db/x.sqlite")
        #expect(configuration.rulesPath == folder.path + "/etc/rules")
    }

    @Test("base directory rule, as pure paths")
    func baseDirectoryRule() {
        #expect(ChatBridgeConfiguration.baseDirectory(forConfigurationFile: "/srv/bridge/config/chatbridge.yaml") == "/srv/bridge")
        #expect(ChatBridgeConfiguration.baseDirectory(forConfigurationFile: "/etc/chatbridge.yaml") == "/etc")
        #expect(ChatBridgeConfiguration.baseDirectory(forConfigurationFile: "/a/config/sub/x.yaml") == "/a/config/sub")
        #expect(ChatBridgeConfiguration.baseDirectory(forConfigurationFile: "/a/configs/x.yaml") == "/a/configs")
        #expect(ChatBridgeConfiguration.baseDirectory(forConfigurationFile: "/config/x.yaml") == "/")
        #expect(ChatBridgeConfiguration.baseDirectory(forConfigurationFile: "/a/./b/../config/x.yaml") == "/a")
    }

    @Test("a relative path is relative to the given current directory and named as given in errors")
    func relativePath() throws {
        let folder = try ConfigTemporaryFolder()
        defer { folder.cleanUp() }
        try folder.write(sourceYAML, to: "config/chatbridge.yaml")
        let configuration = try ChatBridgeConfiguration.load(
            path: "config/chatbridge.yaml", environment: [:], currentDirectory: folder.path)
        #expect(configuration.file == folder.path + "/config/chatbridge.yaml")
        #expect(configuration.storePath == folder.path + "/state/chatbridge.sqlite")

        try folder.write("sources: []\nstore: 3\nbaseline: x\n", to: "config/broken.yaml")
        do {
            _ = try ChatBridgeConfiguration.load(path: "config/broken.yaml", environment: [:], currentDirectory: folder.path)
            Issue.record("expected an error")
        } catch {
            #expect(error.description == """
                config/broken.yaml:1:10: `sources` is empty: list at least one source with name, url and api_key
                config/broken.yaml:3:11: baseline must be one of silent, emit, not 'x'
                """)
        }
    }

    @Test("store and rules may start with ~/ for the home folder")
    func homeFolder() throws {
        let configuration = try ChatBridgeConfiguration.parse(
            yaml: sourceYAML + "\nstore: ~/bridge/db.sqlite\n", file: "/etc/c.yaml", environment: ["HOME": "/home/ada"])
        #expect(configuration.storePath == "/home/ada/bridge/db.sqlite")
    }

    @Test("a missing file or a folder is one error naming the file")
    func unreadable() throws {
        let folder = try ConfigTemporaryFolder()
        defer { folder.cleanUp() }
        do {
            _ = try ChatBridgeConfiguration.load(path: "missing.yaml", environment: [:], currentDirectory: folder.path)
            Issue.record("expected an error")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.description.hasPrefix("missing.yaml: no configuration file here"))
        }
        do {
            _ = try ChatBridgeConfiguration.load(path: folder.path, environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "\(folder.path): this is a folder, not a configuration file")
        }
        let binary = folder.path + "/binary.yaml"
        try Data([0xFF, 0xFE, 0x00, 0xC3]).write(to: URL(fileURLWithPath: binary))
        do {
            _ = try ChatBridgeConfiguration.load(path: binary, environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "\(binary): the file is not UTF-8 text")
        }
    }

    @Test("the default path comes from CHATBRIDGE_CONFIG, else config/chatbridge.yaml")
    func defaultPath() {
        #expect(ChatBridgeConfiguration.defaultPath(environment: [:]) == "config/chatbridge.yaml")
        #expect(ChatBridgeConfiguration.defaultPath(environment: ["CHATBRIDGE_CONFIG": ""]) == "config/chatbridge.yaml")
        #expect(ChatBridgeConfiguration.defaultPath(environment: ["CHATBRIDGE_CONFIG": "/etc/cb.yaml"]) == "/etc/cb.yaml")
    }

    // MARK: Starter files

    @Test("the starter config loads once UNIPILE_API_KEY is set, with every default")
    func starterConfig() throws {
        let folder = try ConfigTemporaryFolder()
        defer { folder.cleanUp() }
        try folder.write(ChatBridgeConfiguration.starterConfigYAML, to: ChatBridgeConfiguration.starterConfigRelativePath)
        let configuration = try ChatBridgeConfiguration.load(
            path: ChatBridgeConfiguration.starterConfigRelativePath,
            environment: ["UNIPILE_API_KEY": "sk-live"],
            currentDirectory: folder.path)
        let source = try #require(configuration.sources.first)
        #expect(configuration.sources.count == 1)
        #expect(source.apiKey.value == "sk-live")
        #expect(source.interval == .seconds(30))
        #expect(source.pageSize == 250)
        #expect(source.maxRequestsPerSecond == 5)
        #expect(configuration.storePath == folder.path + "/state/chatbridge.sqlite")
        #expect(configuration.rulesPath == folder.path + "/rules")
        #expect(configuration.baseline == .silent)
        #expect(configuration.retention == .seconds(30 * 86_400))
        #expect(configuration.sinkNames == ["stdout"])
        #expect(configuration.delivery == DeliveryConfiguration())
        #expect(configuration.http == nil)

        do {
            _ = try ChatBridgeConfiguration.parse(
                yaml: ChatBridgeConfiguration.starterConfigYAML, file: "config/chatbridge.yaml", environment: [:])
            Issue.record("expected the missing key to be reported")
        } catch {
            #expect(error.diagnostics.count == 1)
            #expect(error.description.contains("environment variable UNIPILE_API_KEY is not set"))
        }
    }

    @Test("the starter config shows every option of config.md")
    func starterConfigMentionsEveryOption() {
        let text = ChatBridgeConfiguration.starterConfigYAML
        for key in [
            "sources:", "name:", "url:", "api_key:", "interval:", "page_size:", "account_type:", "account_ids:", "unread:",
            "timeout:", "max_requests_per_second:", "store:", "rules:", "baseline:", "retention:", "sinks:", "type: stdout",
            "type: webhook", "format:", "template:", "secret:", "headers:", "type: exec", "command:", "delivery:",
            "max_attempts:", "initial_backoff:", "max_backoff:", "concurrency:", "http:", "listen:",
        ] {
            #expect(text.contains(key), "starter config lacks \(key)")
        }
    }

    @Test("the starter rule is the InMail example of rules.md, sent to stdout, and loads as a rule")
    func starterRule() throws {
        let rules = try RuleSet.parse(
            yaml: ChatBridgeConfiguration.starterRuleYAML, file: ChatBridgeConfiguration.starterRuleRelativePath)
        let rule = try #require(rules.rules.first)
        #expect(rules.rules.count == 1)
        #expect(rule.name == "linkedin-inmail-unread")
        #expect(rule.on == ["unread.increased", "chat.added"])
        #expect(rule.sinks == ["stdout"])
        #expect(rule.throttle == .seconds(900))
        #expect(rule.isEnabled)

        let lines = ChatBridgeConfiguration.starterRuleYAML.split(separator: "\n").map(String.init)
        let keys = lines.filter { !$0.hasPrefix("#") && !$0.hasPrefix(" ") && $0.contains(":") }
            .map { String($0.prefix { $0 != ":" }) }
        #expect(keys == ["name", "description", "on", "when", "send", "throttle", "template", "enabled"])
        #expect(lines.contains { $0.hasPrefix("name: linkedin-inmail-unread") })
        #expect(lines.contains { $0.hasPrefix("send: [stdout]") })
        #expect(ChatBridgeConfiguration.starterRuleRelativePath.hasPrefix("rules/"))
        #expect(ChatBridgeConfiguration.starterRuleRelativePath.hasSuffix(".yaml"))
    }

    @Test("the repository's config/chatbridge.yaml runs the demo against the simulator")
    func repositoryExample() throws {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let path = repository + "/config/chatbridge.yaml"
        let defaults = try ChatBridgeConfiguration.load(path: path, environment: [:])
        let source = try #require(defaults.sources.first)
        #expect(defaults.sources.count == 1)
        #expect(source.name == "demo")
        #expect(source.url.absoluteString == "http://127.0.0.1:13111")
        #expect(source.apiKey.value == "sim-key")
        #expect(defaults.baseDirectory == repository)
        #expect(defaults.rulesPath == repository + "/rules")
        #expect(defaults.storePath.hasPrefix(repository + "/"))

        let pointed = try ChatBridgeConfiguration.load(
            path: path, environment: ["CHATBRIDGE_DEMO_URL": "http://127.0.0.1:40001", "UNIPILE_API_KEY": "real"])
        #expect(pointed.sources.first?.url.absoluteString == "http://127.0.0.1:40001")
        #expect(pointed.sources.first?.apiKey.value == "real")
    }
}
