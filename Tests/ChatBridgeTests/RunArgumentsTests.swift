import ArgumentParser
import Foundation
import Testing
@testable import chatbridge

// `chatbridge run` is read without ArgumentParser when its arguments are plainly `run`'s
// own options (RunRequest(directArguments:)); everything else goes to ArgumentParser. These
// tests hold the two readings together: what the direct reading accepts, ArgumentParser
// reads the same way, and help, usage and errors are still ArgumentParser's.

@Suite("CLI: run's arguments read directly", .timeLimit(.minutes(1)))
struct RunArgumentsTests {
    static let accepted: [[String]] = [
        ["run"],
        ["run", "--once"],
        ["run", "--once", "--config", "/etc/chatbridge/chatbridge.yaml"],
        ["run", "--config", "config/a b.yaml", "--once"],
        ["run", "--config=x.yaml", "--once"],
        ["run", "--config=a=b.yaml"],
        ["run", "--log-level", "debug", "--log-format", "json"],
        ["run", "--log-level=critical", "--log-format=text", "--once"],
        ["run", "--once", "--drain-timeout", "5s"],
        ["run", "--drain-timeout=2m", "--config", "c.yaml", "--log-level", "trace"],
    ]

    @Test("what it reads, ArgumentParser reads the same", arguments: accepted)
    func sameAsArgumentParser(_ arguments: [String]) throws {
        let direct = try #require(RunRequest(directArguments: arguments), "\(arguments) not read directly")
        let parsed = try #require(try ChatBridgeCommand.parseAsRoot(arguments) as? RunCommand)
        #expect(direct == parsed.request, "\(arguments)")
    }

    static let declined: [[String]] = [
        [],
        ["status"],
        ["run", "--help"],
        ["run", "-h"],
        ["run", "help"],
        ["help", "run"],
        ["run", "--once", "--help"],
        ["run", "--version"],
        ["run", "--generate-completion-script", "bash"],
        ["run", "--bogus"],
        ["run", "-o"],
        ["run", "--"],
        ["run", "--once", "--once"],
        ["run", "--once=true"],
        ["run", "--config"],
        ["run", "--config", "--once"],
        ["run", "--config="],
        ["run", "--config", "a.yaml", "--config", "b.yaml"],
        ["run", "--log-level", "chatty"],
        ["run", "--log-level", "DEBUG"],
        ["run", "--log-format", "xml"],
        ["run", "--drain-timeout", "soon"],
        ["run", "--drain-timeout", "-5s"],
        ["run", "extra"],
        ["runs", "--once"],
    ]

    @Test("anything else is left to ArgumentParser", arguments: declined)
    func leftToArgumentParser(_ arguments: [String]) {
        #expect(RunRequest(directArguments: arguments) == nil, "\(arguments)")
    }

    @Test("the defaults are the declared ones")
    func defaults() throws {
        let direct = try #require(RunRequest(directArguments: ["run"]))
        #expect(direct == (try RunCommand.parse([])).request)
        #expect(direct == RunRequest(config: ConfigFile(explicitPath: nil), log: LogSettings(), once: false, drainTimeout: .seconds(30)))
    }

    @Test("run --help, a bad option and a missing value still get ArgumentParser's text and exit codes")
    func helpAndErrors() async throws {
        let help = try await ChatBridgeCLI.run(["run", "--help"], timeout: .seconds(15))
        #expect(help.exitStatus == 0, "\(help)")
        #expect(help.stdout.hasPrefix("OVERVIEW: Poll every source, detect changes, match rules, deliver."), "\(help)")
        #expect(help.stdout.contains("USAGE: chatbridge run [--config <FILE>]"), "\(help)")
        #expect(help.stdout.contains("--drain-timeout <drain-timeout>") && help.stdout.contains("(default: 30s)"), "\(help)")

        let bogus = try await ChatBridgeCLI.run(["run", "--once", "--bogus"], timeout: .seconds(15))
        #expect(bogus.exitStatus == 2, "\(bogus)")
        #expect(bogus.stderr.hasPrefix("Error: Unknown option '--bogus'"), "\(bogus)")
        #expect(bogus.stderr.contains("Usage: chatbridge run"), "\(bogus)")

        let missing = try await ChatBridgeCLI.run(["run", "--once", "--config"], timeout: .seconds(15))
        #expect(missing.exitStatus == 2, "\(missing)")
        #expect(missing.stderr.hasPrefix("Error: Missing value for '--config <FILE>'"), "\(missing)")

        let badLevel = try await ChatBridgeCLI.run(["run", "--log-level", "chatty"], timeout: .seconds(15))
        #expect(badLevel.exitStatus == 2, "\(badLevel)")
        #expect(badLevel.stderr.contains("The value 'chatty' is invalid for '--log-level <LEVEL>'"), "\(badLevel)")
    }
}
