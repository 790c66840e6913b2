import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore

// `${file:/PATH}` in the configuration (a systemd credential, a Docker secret), and the
// systemd unit of dist/systemd that relies on it.

@Suite("Config: ${file:PATH} secrets and the systemd unit")
struct FileSecretTests {
    static func config(apiKey: String) -> String {
        """
        sources:
          - name: main
            url: https://api1.unipile.com:13111
            api_key: \(apiKey)
        sinks:
          hook:
            type: webhook
            url: https://hooks.example/${file:HOOK_PATH_PLACEHOLDER}
        """
    }

    @Test("the file's content, one trailing line break removed; in any string value")
    func reads() throws {
        let directory = TemporaryDirectory("file-secret")
        let key = directory.file("unipile-api-key")
        let hook = directory.file("hook-path")
        try Data("sk-from-a-file-123\n".utf8).write(to: URL(fileURLWithPath: key))
        try Data("T000/B000/xyz\r\n".utf8).write(to: URL(fileURLWithPath: hook))
        let configuration = try ChatBridgeConfiguration.parse(
            yaml: Self.config(apiKey: "${file:\(key)}").replacingOccurrences(of: "HOOK_PATH_PLACEHOLDER", with: hook),
            file: "/tmp/file-secret/config/chatbridge.yaml", environment: [:])
        #expect(configuration.sources.first?.apiKey.value == "sk-from-a-file-123")
        guard case .webhook(let webhook)? = configuration.sinks["hook"]?.kind else { Issue.record("no webhook"); return }
        #expect(webhook.url.value == "https://hooks.example/T000/B000/xyz")
        #expect(configuration.secretValuesForTest.contains("sk-from-a-file-123"))
        #expect(try ConfigEnvironmentSubstitution.substitute("a: ${file:\(key)} b: ${HOME_X}", environment: ["HOME_X": "hx"]).get().values
            == ["sk-from-a-file-123", "hx"])
    }

    @Test("a missing, relative, large or binary file is a problem at its place, naming the path, never the content")
    func problems() throws {
        let directory = TemporaryDirectory("file-secret-problems")
        let large = directory.file("large")
        try Data(repeating: UInt8(ascii: "k"), count: 70_000).write(to: URL(fileURLWithPath: large))
        let binary = directory.file("binary")
        try Data([0xFF, 0xFE, 0x00, 0x41]).write(to: URL(fileURLWithPath: binary))
        let missing = directory.file("missing")
        for (reference, message) in [
            ("${file:\(missing)}", "sources[0].api_key: ${file:\(missing)}: no such file"),
            ("${file:relative/key}", "sources[0].api_key: ${file:PATH} needs an absolute path, such as ${file:/run/credentials/chatbridge.service/api-key}"),
            ("${file:\(large)}", "sources[0].api_key: ${file:\(large)}: the file is larger than 64 KiB: not a secret"),
            ("${file:\(binary)}", "sources[0].api_key: ${file:\(binary)}: the file is not UTF-8 text"),
            ("${file:\(directory.path)}", "sources[0].api_key: ${file:\(directory.path)}: this is a folder, not a file"),
        ] {
            let error = #expect(throws: ConfigurationError.self) {
                try ChatBridgeConfiguration.parse(
                    yaml: Self.config(apiKey: reference).replacingOccurrences(of: "${file:HOOK_PATH_PLACEHOLDER}", with: "x"),
                    file: "/tmp/file-secret/config/chatbridge.yaml", environment: [:])
            }
            #expect(error?.diagnostics.map { "\($0.line):\($0.column) \($0.message)" } == ["4:14 \(message)"])
            #expect(!"\(error.map { "\($0)" } ?? "")".contains("kkkk"))
        }
    }

    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    @Test("dist/systemd/chatbridge.service: checks rules first, reloads with HUP, never restarts a config error, reads its key as a credential, hardened")
    func unit() throws {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("dist/systemd/chatbridge.service"), encoding: .utf8)
        var directives: [String: [String]] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            directives[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
        }
        func value(_ key: String) -> String? { directives[key]?.last }
        #expect(value("Type") == "exec")
        #expect(value("DynamicUser") == "yes" && value("StateDirectory") == "chatbridge")
        #expect(value("ExecStartPre") == "/usr/local/bin/chatbridge rules check")
        #expect(value("ExecStart") == "/usr/local/bin/chatbridge run")
        #expect(value("ExecReload") == "/bin/kill -HUP $MAINPID")
        #expect(value("Restart") == "on-failure" && value("RestartPreventExitStatus") == "2")
        #expect(value("LoadCredential") == "unipile-api-key:/etc/chatbridge/credentials/unipile-api-key")
        for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "ReadWritePaths=/var/lib/chatbridge"] {
            let parts = hardening.split(separator: "=", maxSplits: 1).map(String.init)
            #expect(value(parts[0]) == parts[1], "\(hardening)")
        }
        // The install comment's config lines load, the key read as the credential would be.
        let directory = TemporaryDirectory("unit-config")
        let credential = directory.file("unipile-api-key")
        try Data("sk-credential\n".utf8).write(to: URL(fileURLWithPath: credential))
        #expect(text.contains("api_key: ${file:/run/credentials/chatbridge.service/unipile-api-key}"))
        let configuration = try ChatBridgeConfiguration.parse(
            yaml: "sources: [{name: main, url: 'https://api1.unipile.com:13111', api_key: '${file:\(credential)}'}]\nstore: /var/lib/chatbridge/chatbridge.sqlite\n",
            file: "/etc/chatbridge/config/chatbridge.yaml", environment: [:])
        #expect(configuration.sources.first?.apiKey.value == "sk-credential")
        #expect(configuration.rulesPath == "/etc/chatbridge/rules")
    }
}

extension ChatBridgeConfiguration {
    /// The API keys and sink secrets, as the runtime's redactor gets them.
    fileprivate var secretValuesForTest: [String] { sources.map(\.apiKey.value) }
}
