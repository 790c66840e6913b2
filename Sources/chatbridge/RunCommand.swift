import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import ServiceLifecycle
import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Formats
import Rules
import Runtime
import Unipile

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Poll every source, detect changes, match rules, deliver.",
        discussion: """
            Runs until SIGINT or SIGTERM (the poll in hand finishes, then it exits 0); \
            SIGHUP reloads config and rules. With --once: one complete poll of every \
            source, then the deliveries due, then exit (1 when a source's poll failed).
            Examples:
              chatbridge run | jq 'select(.kinds | index("unread.increased"))'
              */5 * * * * cd /srv/bridge && chatbridge run --once >> events.jsonl
            """)

    @OptionGroup var config: ConfigOptions
    @OptionGroup var log: LogOptions
    @Flag(help: "One complete poll of every source and the deliveries due, then exit.") var once = false
    @Option(help: "With --once: how long to keep retrying deliveries that fall due.")
    var drainTimeout: DurationArgument = Self.defaultDrainTimeout

    /// `--drain-timeout` when not given.
    static let defaultDrainTimeout = DurationArgument(argument: "30s")!

    /// What these arguments ask for.
    var request: RunRequest {
        RunRequest(config: config.file, log: log.settings, once: once, drainTimeout: drainTimeout.duration)
    }

    func run() async throws {
        try await request.run()
    }
}

/// `chatbridge run` as plain values: what ArgumentParser read into ``RunCommand``, or
/// what ``RunRequest/init(directArguments:)`` read without it.
struct RunRequest: Equatable {
    var config: ConfigFile
    var log: LogSettings
    var once: Bool
    var drainTimeout: Duration

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        DiagnosticOutput.use(try log.resolved(environment: ProcessInfo.processInfo.environment).format)
        let configuration = try config.load()
        let redactor = try log.bootstrap(secrets: configuration.secretValues)
        let rules = try loadRules(configuration)
        let path = config.path
        let logger = Logger(label: "chatbridge")
        // SIGHUP: load both again; with any problem, log it and keep the last good set.
        let reload: @Sendable () -> (ChatBridgeConfiguration, RuleSet)? = {
            do {
                let configuration = try ChatBridgeConfiguration.loadChecked(
                    path: path, environment: ProcessInfo.processInfo.environment)
                let rules = try RuleSet.load(path: configuration.rulesPath, configuration: configuration)
                redactor.update(configuration.secretValues)
                return (configuration, rules)
            } catch {
                for line in "\(error)".split(separator: "\n") {
                    logger.error("reload refused, keeping the running configuration: \(line)")
                }
                return nil
            }
        }
        try await runBridge(
            configuration: configuration, rules: rules, once: once, drainTimeout: drainTimeout,
            reload: reload)
    }
}

/// Loads the rules the configuration names, or exits 2 with one line per problem.
func loadRules(_ configuration: ChatBridgeConfiguration) throws -> RuleSet {
    do {
        return try RuleSet.load(path: configuration.rulesPath, configuration: configuration)
    } catch {
        printError("\(error)")
        throw ExitCode(2)
    }
}

/// Runs the bridge as `run` does; shared with `demo`. Maps what the daemon throws to
/// exit codes: 1 for a store that cannot be opened, a failed source with `--once`, or
/// anything that stopped the daemon.
func runBridge(
    configuration: ChatBridgeConfiguration, rules: RuleSet, once: Bool, drainTimeout: Duration,
    reload: (@Sendable () -> (ChatBridgeConfiguration, RuleSet)?)? = nil,
    alongside: (@Sendable () async throws -> Void)? = nil
) async throws {
    var daemon = BridgeDaemon(configuration: configuration, rules: rules, logger: Logger(label: "chatbridge"))
    daemon.startMetadata = [
        "version": .string(ChatBridgeVersion.current),
        "sources": .array(configuration.sources.map { .string($0.name) }),
        "sinks": .array(configuration.sinkNames.map { .string($0) }),
        "rules": .stringConvertible(rules.rules.count), "store": .string(configuration.storePath),
        "mode": .string(once ? "once" : "daemon"),
    ]
    daemon.synchronousFull = ProcessInfo.processInfo.environment["CHATBRIDGE_SQLITE_SYNCHRONOUS"]?.lowercased() == "full"
    daemon.reload = reload
    daemon.alongside = alongside
    do {
        if once {
            let result = try await daemon.runOnce(drainTimeout: drainTimeout)
            for (source, reason) in result.failedSources.sorted(by: { $0.key < $1.key }) {
                DiagnosticOutput.write(
                    "source \(source): poll failed: \(reason)", message: "poll failed",
                    fields: [("source", .string(source)), ("error", .string(reason))])
            }
            if !result.allSourcesComplete { throw ExitCode(1) }
        } else {
            try await daemon.run()
        }
    } catch let failure as BridgeDaemon.Failure {
        printError("\(failure)")
        throw ExitCode(1)
    }
}
