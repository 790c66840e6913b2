import Foundation
import Formats

/// The `exec` sink: runs a local command per delivery (delivery.md, "exec").
///
/// Two forms, as configured:
/// - ``Command/arguments(program:arguments:)``: the program runs directly, with no shell;
///   each argument is a Mustache template rendered with the event as plain text, so a
///   chat named `$(rm -rf ~)` arrives as that literal text in one argument. The program
///   path itself is not a template. Arguments also see `{{text}}`: the rule's template
///   rendered, else the default summary (so a rule's template reaches a command such as
///   `["notify-send", "chatbridge", "{{text}}"]`).
/// - ``Command/shell(_:)``: the string runs as `/bin/sh -c STRING`, without templating:
///   the event reaches the script only through standard input and the environment,
///   never as shell text.
///
/// Standard input is the event JSON (with `rule`) and a newline. The environment is the
/// given one (``ExecEnvironment/sealed(from:for:)`` in the daemon) plus `CHATBRIDGE_EVENT_ID`, `CHATBRIDGE_EVENT_TYPE`,
/// `CHATBRIDGE_KINDS` (comma-separated), `CHATBRIDGE_RULE`, `CHATBRIDGE_SOURCE`,
/// `CHATBRIDGE_ACCOUNT_TYPE` and `CHATBRIDGE_CHAT_ID` (empty when absent). The command's
/// standard output and standard error are read by chatbridge through one pipe, never
/// copied into its own output: not into the JSON lines of the `stdout` sink, and not raw
/// into its logs, where a command echoing a chat's name could write escape sequences or
/// forged log lines.
///
/// Exit status 0 is delivered. Anything else is a failed attempt and retried, with the
/// last 1 KiB of that output in the error (one line, control characters as spaces: where a
/// failing command says why). Past `timeout` the command's process group
/// gets `SIGTERM`, and `SIGKILL` `killGrace` later; that attempt failed too. Cancellation
/// (shutdown, the end of `run --once`'s drain) stops the command the same way; that
/// attempt is cut short and not counted.
///
/// ```swift
/// let notify = try ExecSink(name: "notify", argv: ["/usr/local/bin/notify", "--title", "{{chat.name}}"])
/// let script = ExecSink(name: "script", command: .shell("jq -r .chat.name >> names.txt"))
/// ```
package struct ExecSink: DeliverySink {
    /// How the command is written.
    package enum Command: Sendable {
        /// The program (a path, or a name looked up in `PATH`) and its argument templates.
        case arguments(program: String, arguments: [DeliveryTemplate])
        /// A script for `/bin/sh -c`.
        case shell(String)
    }

    package let name: String
    package let command: Command
    package let timeout: Duration
    /// Between `SIGTERM` and `SIGKILL` when the command runs past `timeout`.
    package let killGrace: Duration
    private let environment: [String: String]

    /// The shell that runs ``Command/shell(_:)`` commands.
    package static let shellPath = "/bin/sh"
    /// The most of standard error kept in an error message.
    package static let keptStandardErrorBytes = 1024

    package init(
        name: String,
        command: Command,
        timeout: Duration = .seconds(10),
        killGrace: Duration = .seconds(5),
        environment: [String: String] = ExecEnvironment.basics(of: ProcessInfo.processInfo.environment)
    ) {
        self.name = name
        self.command = command
        self.timeout = timeout
        self.killGrace = killGrace
        self.environment = environment
    }

    /// A sink of the argv form: `argv[0]` is the program, the rest argument templates.
    ///
    /// - Throws: ``TemplateError`` when an argument is not a valid template; a
    ///   ``TemplateError`` too when `argv` is empty.
    package init(
        name: String,
        argv: [String],
        timeout: Duration = .seconds(10),
        killGrace: Duration = .seconds(5),
        environment: [String: String] = ExecEnvironment.basics(of: ProcessInfo.processInfo.environment)
    ) throws(TemplateError) {
        guard let program = argv.first, !program.isEmpty else {
            throw TemplateError(message: "the command needs a program", line: nil, column: nil)
        }
        var templates: [DeliveryTemplate] = []
        for argument in argv.dropFirst() { templates.append(try DeliveryTemplate(argument)) }
        self.init(
            name: name, command: .arguments(program: program, arguments: templates), timeout: timeout,
            killGrace: killGrace, environment: environment)
    }

    /// The argument vector the request runs with (`argv[0]` first). Shown by
    /// `chatbridge rules test`; runs nothing.
    package func argumentVector(for request: DeliveryRequest) -> [String] {
        switch command {
        case .shell(let script):
            return [Self.shellPath, "-c", script]
        case .arguments(let program, let templates):
            let event = request.eventWithRule
            let summary = DeliverySummary.text(for: event)
            let text = request.template.map { $0.render(event, extras: ["summary": summary]) } ?? summary
            let extras = ["summary": summary, "text": text]
            return [program] + templates.map { $0.render(event, extras: extras) }
        }
    }

    /// The environment the request runs with: the sink's plus the `CHATBRIDGE_*` variables.
    package func environment(for request: DeliveryRequest) -> [String: String] {
        let event = request.event
        var environment = environment
        environment["CHATBRIDGE_EVENT_ID"] = request.eventID
        environment["CHATBRIDGE_EVENT_TYPE"] = event["type"]?.stringValue ?? ""
        environment["CHATBRIDGE_KINDS"] = (event["kinds"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
        environment["CHATBRIDGE_RULE"] = request.rule ?? ""
        environment["CHATBRIDGE_SOURCE"] = event["source"]?.stringValue ?? ""
        environment["CHATBRIDGE_ACCOUNT_TYPE"] = event["account_type"]?.stringValue ?? ""
        environment["CHATBRIDGE_CHAT_ID"] = event["chat_id"]?.stringValue ?? ""
        return environment
    }

    package func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome {
        let argv = argumentVector(for: request)
        var input = request.eventWithRuleBytes
        input.append(UInt8(ascii: "\n"))
        let child = ChildProcess(
            executable: argv[0], arguments: argv, environment: environment(for: request), standardInput: input,
            timeout: timeout, killGrace: killGrace, standardErrorLimit: Self.keptStandardErrorBytes)
        let result: ChildProcess.Result
        do {
            result = try await child.run()
        } catch {
            // Arguments and environment past the kernel's limits (a chat's very long name in
            // an argument): every attempt of this delivery would fail the same way.
            if error.code == E2BIG {
                return .dead(status: nil, error: "sink \(name): \(error) (a value in the arguments or environment is too long)")
            }
            return .retry(status: nil, error: "sink \(name): \(error)")
        }
        let standardError = HTTPOutcome.outputExcerpt(result.standardError)
        let detail = standardError.isEmpty ? "" : ": \(standardError)"
        if result.cancelled {
            return .retry(status: nil, error: "sink \(name): stopped before it finished (shutting down)\(detail)")
        }
        if result.timedOut {
            // How it ended tells whoever reads the log whether the command honours SIGTERM.
            let how: String
            switch result.termination {
            case .signalled(SIGKILL): how = "killed with SIGKILL after ignoring SIGTERM"
            case .signalled(SIGTERM): how = "stopped with SIGTERM"
            default: how = "stopped"
            }
            return .retry(status: nil, error: "sink \(name): timed out after \(timeout.secondsText), \(how)\(detail)")
        }
        switch result.termination {
        case .exited(0):
            return .delivered(status: 0)
        case .exited(let code):
            return .retry(status: Int(code), error: "sink \(name): exit status \(code)\(detail)")
        case .signalled(let signal):
            return .retry(status: nil, error: "sink \(name): killed by signal \(signal)\(detail)")
        case .unknown:
            return .retry(status: nil, error: "sink \(name): the command's exit status was lost\(detail)")
        }
    }
}
