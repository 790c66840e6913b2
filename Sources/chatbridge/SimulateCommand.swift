import ArgumentParser
import Foundation
import Logging
import Runtime
import UnipileSimulator
import ChatBridgeCore

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the Unipile simulator alone (GET /api/v1/chats and the /_sim/ control API).",
        discussion: """
            Listens on 127.0.0.1 only. Prints `READY <port>` on standard output once it serves.
            Example:
              chatbridge simulate --port 13111 --chats 500 --change-every 5s
              curl -s -H 'X-API-KEY: sim-key' \\
                'http://127.0.0.1:13111/api/v1/chats?limit=2' | jq .

            The control API needs no key (SIM=http://127.0.0.1:13111). Examples:
            """ + SimulatorControlAPI.endpoints.map { endpoint in
                let example = endpoint.example.replacing("http://127.0.0.1:13111", with: "$SIM")
                return "\n  \(endpoint.method) \(endpoint.path): \(endpoint.summary)\n    \(example)"
            }.joined())

    @Option(help: "The port on 127.0.0.1 (0: any free port).") var port: Int = 13111
    @Option(help: "How many chats the generated workspace has.") var chats: Int = 200
    @Option(help: "The seed of the workspace: the same seed gives the same chats.") var seed: UInt64 = 1
    @Option(help: "Make random, plausible changes this often (e.g. 5s).") var changeEvery: DurationArgument?
    @Option(help: "The API key clients must send as X-API-KEY.") var apiKey: String = "sim-key"
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard chats >= 0 else { throw ValidationError("--chats must be 0 or more") }
    }

    func run() async throws {
        StandardOutput.ignoreBrokenPipeSignal()
        // The key is shown on purpose: it is the simulator's, which clients must send.
        _ = try log.settings.bootstrap()
        let options = SimulatorOptions(
            port: port, apiKey: apiKey, chats: chats, seed: seed, changeEvery: changeEvery?.duration,
            clock: { Date() })
        let simulator = UnipileSimulator(options: options, logger: Logger(label: "chatbridge.simulator"))
        let (apiKey, requestedPort) = (apiKey, port)
        do {
            try await runUntilStopped(logger: Logger(label: "chatbridge.simulator")) {
                do {
                    try await simulator.run { port in
                        printLine("READY \(port)")
                        printError(
                            "simulator on http://127.0.0.1:\(port)/api/v1/chats (send X-API-KEY: \(apiKey)); "
                                + "control API: curl -s http://127.0.0.1:\(port)/_sim/")
                    }
                } catch {
                    throw AddressInUseError.recognizing(
                        error, host: "127.0.0.1", port: requestedPort,
                        advice: "choose another --port (or --port 0 for any free one), or stop the program that holds it")
                }
            }
        } catch let error as AddressInUseError {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}
