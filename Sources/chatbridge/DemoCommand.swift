import ArgumentParser
import Foundation
import Logging
import UnipileSimulator
import ChatBridgeConfig
import ChatBridgeCore

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "See chatbridge work, with nothing to set up.",
        discussion: """
            Starts the built-in Unipile simulator on a free loopback port with a generated \
            workspace whose chats change every few seconds, and runs the bridge against it \
            with the repository's config/chatbridge.yaml and rules/ (a temporary store), \
            printing deliveries as JSON lines until you press Ctrl-C. Outside the \
            repository it runs the starter config of `chatbridge init` with no rules, so \
            that every event is printed.
            Example:
              swift run chatbridge demo | jq -c '{rule, kinds, chat: .chat.name}'
            """)

    @Option(help: "How many chats the simulated workspace has.") var chats: Int = 60
    @Option(help: "How often the simulator changes chats.") var changeEvery: DurationArgument =
        DurationArgument(argument: "2s")!
    @Option(help: "How often the bridge polls the simulator.") var interval: DurationArgument =
        DurationArgument(argument: "2s")!
    @Option(help: "The workspace's seed.") var seed: UInt64 = 1
    @OptionGroup var log: LogOptions

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        _ = try log.settings.bootstrap()
        let logger = Logger(label: "chatbridge.demo")
        let apiKey = "demo-key-\(UInt32.random(in: 0...UInt32.max))"
        let simulator = UnipileSimulator(
            options: SimulatorOptions(
                port: 0, apiKey: apiKey, chats: chats, seed: seed, changeEvery: changeEvery.duration, clock: { Date() }),
            logger: Logger(label: "chatbridge.simulator"))
        let workspace = (NSTemporaryDirectory() as NSString).appendingPathComponent("chatbridge-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: workspace) }

        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await simulator.run { port in portContinuation.yield(port) }
            }
            var iterator = portStream.makeAsyncIterator()
            guard let port = await iterator.next() else { return }
            let configuration = try demoConfiguration(port: port, apiKey: apiKey, workspace: workspace)
            let rules = try loadRules(configuration)
            logger.notice(
                "simulator on http://127.0.0.1:\(port); \(rules.rules.count) rules from \(configuration.rulesPath); store in \(workspace); Ctrl-C to stop")
            try await runBridge(configuration: configuration, rules: rules, once: false, drainTimeout: .seconds(5))
            group.cancelAll()
        }
    }

    /// The repository's config pointed at the simulator, with a throwaway store; the
    /// starter config and an empty rules folder when run outside the repository.
    func demoConfiguration(port: Int, apiKey: String, workspace: String) throws -> ChatBridgeConfiguration {
        var environment = ProcessInfo.processInfo.environment
        environment["CHATBRIDGE_DEMO_URL"] = "http://127.0.0.1:\(port)"
        environment["UNIPILE_API_KEY"] = apiKey
        environment["CHATBRIDGE_DEMO_INTERVAL"] = ConfigDuration.format(interval.duration)
        let repositoryConfig = "config/chatbridge.yaml"
        var configuration: ChatBridgeConfiguration
        do {
            if FileManager.default.fileExists(atPath: repositoryConfig) {
                configuration = try ChatBridgeConfiguration.load(path: repositoryConfig, environment: environment)
            } else {
                let starter = (workspace as NSString).appendingPathComponent("config/chatbridge.yaml")
                try FileManager.default.createDirectory(
                    atPath: (starter as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(ChatBridgeConfiguration.starterConfigYAML.utf8).write(to: URL(fileURLWithPath: starter))
                // The starter config names `rules/`: an empty folder, so every event goes to stdout.
                try FileManager.default.createDirectory(
                    atPath: (workspace as NSString).appendingPathComponent("rules"), withIntermediateDirectories: true)
                configuration = try ChatBridgeConfiguration.load(path: starter, environment: environment)
            }
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        configuration.storePath = (workspace as NSString).appendingPathComponent("chatbridge.sqlite")
        for index in configuration.sources.indices {
            configuration.sources[index].url = URL(string: "http://127.0.0.1:\(port)")!
            configuration.sources[index].apiKey = Secret(apiKey)
            configuration.sources[index].interval = interval.duration
            configuration.sources[index].maxRequestsPerSecond = 0
        }
        return configuration
    }
}
