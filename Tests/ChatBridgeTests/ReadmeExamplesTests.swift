import Foundation
import Testing
import UnipileSimulator
@testable import ChatBridgeCore

// The README's examples, run: every fenced block after a `<!-- runnable: KIND -->` line.
// `config` is written as config/chatbridge.yaml (its Unipile URL pointed at a simulator),
// `rule` into rules/, and each `sh` block runs with /bin/sh -e in that folder, with the
// built `chatbridge` first on PATH and `127.0.0.1:13111` meaning the simulator. So the
// README stays true.

/// One runnable block of the README.
struct ReadmeBlock: Sendable, CustomStringConvertible {
    var kind: String
    var text: String
    /// The line of its opening fence.
    var line: Int
    var description: String { "README.md:\(line) (\(kind))" }

    static let readmePath: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md").path

    /// Every block marked runnable, in order.
    static func all() throws -> [ReadmeBlock] {
        let lines = try String(contentsOfFile: readmePath, encoding: .utf8).components(separatedBy: "\n")
        var blocks: [ReadmeBlock] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("<!-- runnable: "), line.hasSuffix(" -->"), index + 1 < lines.count,
                  lines[index + 1].hasPrefix("```")
            else { index += 1; continue }
            let kind = String(line.dropFirst("<!-- runnable: ".count).dropLast(" -->".count))
            var body: [String] = []
            var end = index + 2
            while end < lines.count, !lines[end].hasPrefix("```") { body.append(lines[end]); end += 1 }
            blocks.append(ReadmeBlock(kind: kind, text: body.joined(separator: "\n") + "\n", line: index + 2))
            index = end + 1
        }
        return blocks
    }
}

extension EndToEndTests {
    @Suite("README: the runnable examples run", .timeLimit(.minutes(3)))
    struct ReadmeExamplesTests {
        @Test func everyRunnableBlockRuns() async throws {
            let blocks = try ReadmeBlock.all()
            let config = try #require(blocks.first { $0.kind == "config" }, "the README's config is runnable")
            let rules = blocks.filter { $0.kind == "rule" }
            let scripts = blocks.filter { $0.kind == "sh" }
            #expect(!rules.isEmpty && scripts.count >= 2, "\(blocks)")
            #expect(blocks.allSatisfy { ["config", "rule", "sh"].contains($0.kind) }, "\(blocks)")

            try await WebhookRecorder.withRunning { recorder in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: "sim-key", chats: 30, seed: 31)) { simulator in
                    let directory = TemporaryDirectory("chatbridge-readme")
                    let manager = FileManager.default
                    try manager.createDirectory(atPath: directory.file("config"), withIntermediateDirectories: true)
                    try manager.createDirectory(atPath: directory.file("rules"), withIntermediateDirectories: true)
                    let configText = config.text.replacingOccurrences(of: "https://api1.unipile.com:13111", with: simulator.baseURL)
                    #expect(configText != config.text, "the config names the Unipile DSN it documents")
                    try Data(configText.utf8).write(to: URL(fileURLWithPath: directory.file("config/chatbridge.yaml")))
                    for (index, rule) in rules.enumerated() {
                        try Data(rule.text.utf8).write(to: URL(fileURLWithPath: directory.file("rules/readme-\(index).yaml")))
                    }
                    let binDirectory = (ChatBridgeCLI.executablePath as NSString).deletingLastPathComponent
                    let environment = ChatBridgeCLI.environment([
                        "UNIPILE_API_KEY": "sim-key", "SLACK_WEBHOOK_URL": recorder.url, "WEBHOOK_SECRET": "whsec-readme-test",
                        "PATH": binDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
                    ])
                    func run(_ script: String) async throws -> TestChild.Result {
                        let child = try TestChild.start(
                            executable: "/bin/sh", arguments: ["-e", "-c", script], environment: environment,
                            currentDirectory: directory.path)
                        return await child.finish(timeout: .seconds(60))
                    }
                    // The config and rules as written are valid, and there are events to try.
                    let check = try await run("chatbridge rules check")
                    #expect(check.exitStatus == 0, "\(config) and \(rules): \(check)")
                    try #require(try await run("chatbridge run --once --drain-timeout 1s").exitStatus == 0)
                    let chatID = try #require(await simulator.state.chatIDs().first)
                    try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": 7}"#)
                    let changed = try await run("chatbridge run --once --drain-timeout 1s")
                    try #require(changed.exitStatus == 0, "\(changed)")

                    for script in scripts {
                        let text = script.text.replacingOccurrences(of: "127.0.0.1:13111", with: "127.0.0.1:\(simulator.port)")
                        let result = try await run(text)
                        #expect(result.exitStatus == 0, "\(script): \(result)")
                        // Error answers (API and control API) carry a "title"; a listed fault does not.
                        #expect(!result.stdout.contains(#""title":"#), "\(script): an error answer: \(result.stdout.prefix(2000))")
                        #expect(!result.stdout.isEmpty, "\(script) printed something")
                    }
                }
            }
        }
    }
}
