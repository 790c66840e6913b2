import ArgumentParser
import AsyncHTTPClient
import ChatBridge
import Foundation
import Logging
import ServiceLifecycle

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
    @Option(help: "With --once: how long to keep retrying deliveries that fall due (default 30s).")
    var drainTimeout: DurationArgument = DurationArgument(argument: "30s")!

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.load()
        _ = log.bootstrap(secrets: configuration.secretValues)
        let rules = try loadRules(configuration)
        try await runBridge(configuration: configuration, rules: rules, once: once, drainTimeout: drainTimeout.duration)
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

/// Runs the bridge as `run` does; shared with `demo`.
func runBridge(
    configuration: ChatBridgeConfiguration, rules: RuleSet, once: Bool, drainTimeout: Duration,
    alongside: (@Sendable () async throws -> Void)? = nil
) async throws {
    let logger = Logger(label: "chatbridge")
    let httpClient = HTTPClient(
        eventLoopGroupProvider: .singleton, configuration: UnipileClient.makeHTTPClientConfiguration())
    do {
        try await runBridge(
            configuration: configuration, rules: rules, once: once, drainTimeout: drainTimeout, logger: logger,
            httpClient: httpClient, alongside: alongside)
    } catch {
        try? await httpClient.shutdown()
        throw error
    }
    try? await httpClient.shutdown()
}

private func runBridge(
    configuration: ChatBridgeConfiguration, rules: RuleSet, once: Bool, drainTimeout: Duration, logger: Logger,
    httpClient: HTTPClient, alongside: (@Sendable () async throws -> Void)?
) async throws {
    let bridge: Bridge
    do {
        bridge = try Bridge(configuration: configuration, rules: rules, httpClient: httpClient, logger: logger)
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
    do {
        if once {
            let result = try await bridge.runOnce(drainTimeout: drainTimeout)
            for (source, reason) in result.failedSources.sorted(by: { $0.key < $1.key }) {
                printError("source \(source): poll failed: \(reason)")
            }
            if !result.allSourcesComplete { throw ExitCode(1) }
            return
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: bridge)]
        if let alongside { services.append(.init(service: ClosureService(body: alongside))) }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint]
        groupConfiguration.cancellationSignals = []
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(8)
        try await ServiceGroup(configuration: groupConfiguration).run()
    } catch is Dispatcher.OutputClosed {
        return  // `chatbridge run | head -3`: a reader that went away is not an error
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// A service that runs a closure until graceful shutdown cancels it.
struct ClosureService: Service {
    let body: @Sendable () async throws -> Void
    func run() async throws {
        try await cancelWhenGracefulShutdown { try await body() }
    }
}
