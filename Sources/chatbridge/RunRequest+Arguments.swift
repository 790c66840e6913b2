import ArgumentParser

extension RunRequest {
    /// `chatbridge run` read straight from its arguments, for the lines a service unit
    /// or a crontab runs (`run`, `run --once --config FILE`, with `--log-level`,
    /// `--log-format`, `--drain-timeout`); `nil` for anything else.
    ///
    /// ArgumentParser builds the tree of every command, their options and the
    /// completion-script flags before it reads one argument: about a tenth of a
    /// `run --once` on a small workspace; even making a ``RunCommand`` instantiates its
    /// generic option wrappers, with their conformance checks. This reads only what is
    /// certain to mean the same to ArgumentParser: each option of `run` at most once, as
    /// `--name value` or `--name=value`, with a value that ArgumentParser's own
    /// conversion (`ExpressibleByArgument`) accepts. Everything else (`--help`, `-h`, `help`, an
    /// unknown or repeated option, a missing or bad value, `--`) returns `nil`, and
    /// ArgumentParser parses the whole command line as ever, with its help, usage and
    /// error text.
    ///
    /// ```swift
    /// RunRequest(directArguments: ["run", "--once", "--config", "a.yaml"])  // once, a.yaml
    /// RunRequest(directArguments: ["run", "--help"])                        // nil
    /// ```
    init?(directArguments arguments: [String]) {
        guard arguments.first == RunCommand.configuration.commandName else { return nil }
        var once = false
        var configPath: String?
        var logLevel: LogLevelArgument?
        var logFormat: LogFormatArgument?
        var drainTimeout: DurationArgument?
        var seen: [Substring] = []
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--"), argument.count > 2 else { return nil }
            let name: Substring
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                name = argument[..<equals]
                value = String(argument[argument.index(after: equals)...])
            } else {
                name = argument[...]
            }
            guard !seen.contains(name) else { return nil }
            seen.append(name)
            if name == "--once" {
                guard value == nil else { return nil }
                once = true
                continue
            }
            if value == nil { value = rest.popFirst() }
            // ArgumentParser reads `--config -x` as a missing value: leave such to it.
            guard let value, !value.isEmpty, !value.hasPrefix("-") else { return nil }
            switch name {
            case "--config": configPath = value
            case "--log-level": guard let level = LogLevelArgument(argument: value) else { return nil }; logLevel = level
            case "--log-format": guard let format = LogFormatArgument(argument: value) else { return nil }; logFormat = format
            case "--drain-timeout": guard let timeout = DurationArgument(argument: value) else { return nil }; drainTimeout = timeout
            default: return nil
            }
        }
        self.init(
            config: ConfigFile(explicitPath: configPath), log: LogSettings(level: logLevel, format: logFormat),
            once: once, drainTimeout: (drainTimeout ?? RunCommand.defaultDrainTimeout).duration)
    }
}
