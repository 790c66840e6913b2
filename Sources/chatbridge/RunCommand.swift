import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import ServiceLifecycle
import ChatBridgeConfig
import ChatBridgeCore
import Delivery
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
    @Option(help: "With --once: how long to keep retrying deliveries that fall due (default 30s).")
    var drainTimeout: DurationArgument = DurationArgument(argument: "30s")!

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        let configuration = try config.load()
        let redactor = log.bootstrap(secrets: configuration.secretValues)
        let rules = try loadRules(configuration)
        let path = config.path
        let logger = Logger(label: "chatbridge")
        // SIGHUP: load both again; with any problem, log it and keep the last good set.
        let reload: @Sendable () -> (ChatBridgeConfiguration, RuleSet)? = {
            do {
                let configuration = try ChatBridgeConfiguration.load(
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
            configuration: configuration, rules: rules, once: once, drainTimeout: drainTimeout.duration,
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

/// Runs the bridge as `run` does; shared with `demo`.
func runBridge(
    configuration: ChatBridgeConfiguration, rules: RuleSet, once: Bool, drainTimeout: Duration,
    reload: (@Sendable () -> (ChatBridgeConfiguration, RuleSet)?)? = nil,
    alongside: (@Sendable () async throws -> Void)? = nil
) async throws {
    let logger = Logger(label: "chatbridge")
    let httpClient = HTTPClient(
        eventLoopGroupProvider: .singleton, configuration: UnipileClient.makeHTTPClientConfiguration())
    do {
        try await runBridge(
            configuration: configuration, rules: rules, once: once, drainTimeout: drainTimeout, logger: logger,
            httpClient: httpClient, reload: reload, alongside: alongside)
    } catch {
        try? await httpClient.shutdown()
        throw error
    }
    try? await httpClient.shutdown()
}

private func runBridge(
    configuration: ChatBridgeConfiguration, rules: RuleSet, once: Bool, drainTimeout: Duration, logger: Logger,
    httpClient: HTTPClient, reload: (@Sendable () -> (ChatBridgeConfiguration, RuleSet)?)?,
    alongside: (@Sendable () async throws -> Void)?
) async throws {
    let bridge: Bridge
    do {
        let synchronous = ProcessInfo.processInfo.environment["CHATBRIDGE_SQLITE_SYNCHRONOUS"]?.lowercased()
        bridge = try Bridge(
            configuration: configuration, rules: rules, httpClient: httpClient, logger: logger,
            synchronousFull: synchronous == "full")
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
        services.append(.init(service: RetentionService(
            store: bridge.store, retention: { bridge.configuration.retention }, logger: logger)))
        if let listen = configuration.http {
            // First in the list: shut down last, so /healthz answers while the bridge stops.
            services.insert(.init(service: OperationsServer(
                listen: listen, store: bridge.store, metrics: bridge.metrics,
                sources: { bridge.configuration.sources }, logger: logger)), at: 0)
        }
        if let reload {
            services.append(.init(service: ClosureService {
                for await _ in signalStream(SIGHUP) {
                    logger.notice("SIGHUP: reloading config and rules")
                    if let (configuration, rules) = reload() { bridge.reload(configuration: configuration, rules: rules) }
                }
            }))
        }
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
