import ArgumentParser
import Foundation
import Logging
import ChatBridgeConfig
import ChatBridgeCore
import Formats
import Runtime

struct ChatBridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chatbridge",
        abstract: "Turns changes in Unipile chats into events: webhooks, JSON lines, local commands.",
        discussion: """
            Start with `chatbridge demo` (nothing to configure), then `chatbridge init` and \
            `chatbridge run`. Data goes to standard output, logs to standard error.
            """,
        version: ChatBridgeVersion.current,
        subcommands: [
            RunCommand.self, InitCommand.self, DemoCommand.self, SimulateCommand.self, RulesCommand.self,
            EvalCommand.self, ChatsCommand.self, EventsCommand.self, DeliveriesCommand.self, ReplayCommand.self,
            StatusCommand.self, ExplainCommand.self, StoreCommand.self, SinksCommand.self,
        ]
    )

    /// Parses and runs the command. A usage error (unknown option, bad value, missing
    /// argument) exits 2, as a configuration error does, not ArgumentParser's 64: one
    /// code for "you asked for something wrong" (README, "Exit status").
    ///
    /// `run` as services and crontabs write it is read without ArgumentParser
    /// (``RunRequest/init(directArguments:)``); any other command line goes to it.
    static func parseAndRun() async {
        // Every command's messages on standard error follow `CHATBRIDGE_LOG_FORMAT`; the
        // commands with `--log-format` (run, demo, simulate) may say otherwise.
        // (A value that is no format is reported by those commands, which read it to log.)
        if let text = ProcessInfo.processInfo.environment["CHATBRIDGE_LOG_FORMAT"],
           let format = LogFormatArgument(rawValue: text.lowercased())?.format {
            DiagnosticOutput.use(format)
        }
        do {
            if let run = RunRequest(directArguments: Array(CommandLine.arguments.dropFirst())) {
                try await run.run()
                return
            }
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // Asked for JSON logs: the usage error is a JSON line too.
            let arguments = CommandLine.arguments
            if arguments.contains("--log-format=json")
                || zip(arguments, arguments.dropFirst()).contains(where: { $0 == "--log-format" && $1 == "json" })
            {
                DiagnosticOutput.use(.json)
            }
            if exitCode(for: error) == .validationFailure {
                printError(fullMessage(for: error))
                Foundation.exit(ExitCode.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}

extension ExitCode {
    /// A usage or configuration error.
    static let usage = ExitCode(2)
}

/// Options every command that reads the config or the store takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The config file (default: $CHATBRIDGE_CONFIG, else config/chatbridge.yaml).", valueName: "FILE"))
    var config: String?

    /// The config file these options name.
    var file: ConfigFile { ConfigFile(explicitPath: config) }
}

/// The config file a command reads: `--config`, else `$CHATBRIDGE_CONFIG`, else
/// `config/chatbridge.yaml`.
struct ConfigFile: Equatable {
    /// `--config` as given; `nil` when not given.
    var explicitPath: String?

    var path: String {
        explicitPath ?? ChatBridgeConfiguration.defaultPath(environment: ProcessInfo.processInfo.environment)
    }

    /// Loads and validates the config, or exits 2 with one line per problem.
    ///
    /// - Parameter secrets: `.mayBeUnset` for commands that only read (the store, the
    ///   rules): a secret whose `${VAR}` is not set is then no error, so that
    ///   `chatbridge status` works in a shell without the service's `EnvironmentFile`.
    func load(secrets: ChatBridgeConfiguration.SecretUse = .required) throws -> ChatBridgeConfiguration {
        do {
            return try ChatBridgeConfiguration.loadChecked(
                path: path, environment: ProcessInfo.processInfo.environment, secrets: secrets)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
    }
}

/// Options of commands that log.
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "trace, debug, info, notice, warning, error or critical (default: $CHATBRIDGE_LOG_LEVEL, else info).",
        valueName: "LEVEL"))
    var logLevel: LogLevelArgument?

    @Option(name: .long, help: ArgumentHelp(
        "text or json (default: $CHATBRIDGE_LOG_FORMAT, else text).", valueName: "FORMAT"))
    var logFormat: LogFormatArgument?

    /// The level and format these options ask for.
    var settings: LogSettings { LogSettings(level: logLevel, format: logFormat) }
}

/// How a command logs: `--log-level` and `--log-format` as given (`nil` when not).
struct LogSettings: Equatable {
    var level: LogLevelArgument?
    var format: LogFormatArgument?

    /// The level and format: the flags, else `CHATBRIDGE_LOG_LEVEL` and
    /// `CHATBRIDGE_LOG_FORMAT`, else info and text. A variable with another value is a
    /// usage error (exit 2) rather than a silent default.
    func resolved(environment: [String: String]) throws -> (level: Logger.Level, format: LogFormat) {
        func fromEnvironment<Value: RawRepresentable & CaseIterable>(_ name: String, as: Value.Type) throws -> Value?
        where Value.RawValue == String {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = Value(rawValue: text.lowercased()) else {
                printError("\(name) must be one of \(Value.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
                throw ExitCode(2)
            }
            return value
        }
        let level = try level ?? fromEnvironment("CHATBRIDGE_LOG_LEVEL", as: LogLevelArgument.self) ?? .info
        let format = try format ?? fromEnvironment("CHATBRIDGE_LOG_FORMAT", as: LogFormatArgument.self) ?? .text
        return (level.level, format.format)
    }

    /// Sends swift-log to standard error, hiding `secrets` wherever they appear.
    func bootstrap(secrets: [String] = []) throws -> LogRedactor {
        let redactor = LogRedactor(secrets: secrets)
        let (level, format) = try resolved(environment: ProcessInfo.processInfo.environment)
        DiagnosticOutput.use(format)
        LoggingBootstrap.once {
            LoggingSystem.bootstrap { label in
                StderrLogHandler(label: label, format: format, level: level, redactor: redactor)
            }
        }
        return redactor
    }
}

enum LogLevelArgument: String, ExpressibleByArgument, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
    var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

enum LogFormatArgument: String, ExpressibleByArgument, CaseIterable {
    case text, json
    var format: LogFormat { LogFormat(rawValue: rawValue) ?? .text }
}

/// swift-log may be bootstrapped once per process.
enum LoggingBootstrap {
    private static let done = ManagedAtomicFlag()
    static func once(_ body: () -> Void) {
        if done.setIfUnset() { body() }
    }
}

/// A flag set at most once, safe across threads.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    func setIfUnset() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if set { return false }
        set = true
        return true
    }
}

/// Writes one line to standard error (a JSON log line with `--log-format json`).
func printError(_ message: String) {
    DiagnosticOutput.write(message)
}

/// The bytes of a file a command was given (`-`: standard input), or a one-line reason
/// naming `path` on standard error and exit 2: "events.json: no such file".
func readInputFile(_ path: String) throws -> Data {
    if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    var isFolder: ObjCBool = false
    let reason: String
    if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
        reason = "no such file"
    } else if isFolder.boolValue {
        reason = "a folder, not a file"
    } else if !FileManager.default.isReadableFile(atPath: path) {
        reason = "permission denied"
    } else if let data = FileManager.default.contents(atPath: path) {
        return data
    } else {
        reason = "cannot be read"
    }
    printError("\(path): \(reason)")
    throw ExitCode(2)
}

/// Writes one line to standard output; a closed pipe ends the process quietly with 0.
func printLine(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(0x0A)
    if !StandardOutput.write(bytes) { Foundation.exit(0) }
}

/// Parses durations like `30s`, `15m`, `2h`, `7d` as command options.
struct DurationArgument: ExpressibleByArgument {
    let duration: Duration
    init?(argument: String) {
        guard let duration = try? ConfigDuration.parse(argument) else { return nil }
        self.duration = duration
    }
    var seconds: Double { duration.seconds }

    /// How `--help` shows a default: as it would be written (`30s`).
    var defaultValueDescription: String { ConfigDuration.format(duration) }
}
