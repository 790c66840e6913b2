import Logging

/// Passes every log event on, except the error HummingbirdCore logs when the task serving
/// it is cancelled (`Waiting on child channel: CancellationError()`).
///
/// Cancellation is how a simulator is stopped (``UnipileSimulator/run(onStarted:)``), so
/// that message is not an error here; without the filter every `chatbridge simulate` and
/// `demo` run, and every test, would end with it. Hummingbird's quiet alternative, graceful
/// shutdown, needs ServiceLifecycle's `ServiceGroup`, which this target does not depend on.
struct ShutdownLogFilter: LogHandler {
    var wrapped: any LogHandler

    func log(event: LogEvent) {
        if event.level == .error, event.message.description.hasPrefix("Waiting on child channel: CancellationError") {
            return
        }
        wrapped.log(event: event)
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }
}
