import Foundation
import Logging
import Synchronization
import ChatBridgeCore
import Runtime

/// How the CLI's own messages on standard error look: plain lines by default; with
/// `--log-format json` (set by ``LogSettings/bootstrap(secrets:)``) log lines like every
/// other, so that a log collector can read every line a command writes.
enum DiagnosticOutput {
    private static let format = Mutex<LogFormat?>(nil)

    /// From now on, messages are log lines of `format`.
    static func use(_ format: LogFormat) {
        self.format.withLock { $0 = format }
    }

    /// Writes `text` as it is, or, in JSON mode, as a log line whose message is `message`
    /// (default: `text`) with `fields`.
    static func write(
        _ text: String, level: Logger.Level = .error, message: String? = nil, fields: [(String, JSONValue)] = []
    ) {
        let line: String
        if let format = format.withLock({ $0 }), format == .json {
            // One problem a line, as in text.
            let messages = (message ?? text).split(separator: "\n").map(String.init)
            line = messages.map {
                StderrLogHandler.line(format: .json, level: level, message: $0, fields: fields, at: Date())
            }.joined()
        } else {
            line = text.hasSuffix("\n") ? text : text + "\n"
        }
        StandardOutput.write(Array(line.utf8), to: 2)
    }
}
