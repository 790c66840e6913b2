import Foundation
import Testing

// What the shell sees of chatbridge: completion scripts, and --help with examples for
// the sinks commands.

@Suite("CLI: shell completions and help", .timeLimit(.minutes(1)))
struct CLIShellTests {
    @Test("--generate-completion-script bash|zsh|fish completes the commands, sinks included", arguments: ["bash", "zsh", "fish"])
    func completions(_ shell: String) async throws {
        let result = try await ChatBridgeCLI.run(["--generate-completion-script", shell], timeout: .seconds(15))
        #expect(result.exitStatus == 0, "\(result)")
        for word in ["sinks", "rules", "log-format", "event"] {
            #expect(result.stdout.contains(word), "\(shell) completion lacks \(word)")
        }
    }

    @Test("sinks test --help and sinks list --help show an example each")
    func help() async throws {
        let test = try await ChatBridgeCLI.run(["sinks", "test", "--help"], timeout: .seconds(15))
        #expect(test.exitStatus == 0)
        #expect(test.stdout.contains("chatbridge sinks test phone"))
        #expect(test.stdout.contains("--event"))
        let list = try await ChatBridgeCLI.run(["sinks", "list", "--help"], timeout: .seconds(15))
        #expect(list.stdout.contains("chatbridge sinks list | jq"))
        let run = try await ChatBridgeCLI.run(["run", "--help"], timeout: .seconds(15))
        #expect(run.stdout.contains("$CHATBRIDGE_LOG_LEVEL") && run.stdout.contains("$CHATBRIDGE_LOG_FORMAT"))
    }
}
