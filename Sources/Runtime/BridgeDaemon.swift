import AsyncHTTPClient
import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Foundation
import Logging
import Rules
import ServiceLifecycle
import Store
import StoreSQLite
import Unipile
import UnixSignals

/// `chatbridge run` as services: the bridge, retention, the `/metrics` and `/healthz`
/// server, reload on SIGHUP, and graceful shutdown on SIGTERM/SIGINT with a deadline.
///
/// The command line parses arguments and maps what this throws to exit codes; every
/// other part of running the daemon is assembled here.
///
/// ```swift
/// let daemon = BridgeDaemon(configuration: configuration, rules: rules, logger: logger)
/// try await daemon.run()                                    // until SIGTERM
/// let result = try await daemon.runOnce(drainTimeout: .seconds(30))  // cron
/// ```
package struct BridgeDaemon: Sendable {
    package var configuration: ChatBridgeConfiguration
    package var rules: RuleSet
    package var logger: Logger
    /// SQLite `synchronous = FULL` instead of `NORMAL` (`CHATBRIDGE_SQLITE_SYNCHRONOUS=full`).
    package var synchronousFull = false
    /// How long graceful shutdown may take before what is left is cancelled (and stays pending).
    package var shutdownDeadline: Duration = .seconds(8)
    /// Loads configuration and rules again on SIGHUP; `nil` when they cannot be used
    /// (the running set stays). `nil` here: SIGHUP is not handled.
    package var reload: (@Sendable () -> (ChatBridgeConfiguration, RuleSet)?)?
    /// Work to run beside the bridge until shutdown (`demo` runs its simulator so).
    package var alongside: (@Sendable () async throws -> Void)?
    /// What the "starting" line says (version, sources, mode...), logged once the store is
    /// locked and open: a second `run` on the store says only that another one runs.
    package var startMetadata: Logger.Metadata?

    package init(configuration: ChatBridgeConfiguration, rules: RuleSet, logger: Logger) {
        self.configuration = configuration
        self.rules = rules
        self.logger = logger
    }

    /// Why the daemon could not run.
    package enum Failure: Error, CustomStringConvertible {
        /// The store could not be opened (its path and the cause).
        case store(StoreError)
        /// Another `chatbridge run` holds the store.
        case locked(SQLiteWriterLock.Unavailable)
        /// Something else ended the daemon with an error.
        case stopped(any Error)

        package var description: String {
            switch self {
            case .store(let error): "\(error)"
            case .locked(let error): "\(error)"
            case .stopped(let error): "\(error)"
            }
        }
    }

    /// Runs until SIGTERM or SIGINT. Returns normally after a graceful stop, and when
    /// standard output was closed by its reader (`chatbridge run | head -3`).
    /// - Throws: ``Failure``.
    package func run() async throws(Failure) {
        try await withBridge { bridge in try await runServices(bridge) }
    }

    /// One complete poll of every source, the deliveries that fall due within
    /// `drainTimeout`, and one retention pass (cron has no background pruning).
    /// - Throws: ``Failure``.
    package func runOnce(drainTimeout: Duration) async throws(Failure) -> Bridge.OnceResult {
        try await withBridge { bridge in
            do {
                return try await bridge.runOnce(drainTimeout: drainTimeout)
            } catch is Dispatcher.OutputClosed {
                return Bridge.OnceResult(failedSources: [:])  // the reader went away: not an error
            }
        }
    }

    /// Opens the store and builds the bridge around one shared HTTP client, shut down after.
    private func withBridge<Value: Sendable>(
        _ body: (Bridge) async throws -> Value
    ) async throws(Failure) -> Value {
        // One writer per SQLite store: a second `run` stops here, before it polls anything.
        // (A PostgreSQL store is shared by design: its instances coordinate by leases.)
        var lock: SQLiteWriterLock?
        if configuration.postgresStore == nil {
            do {
                lock = try SQLiteWriterLock(storePath: configuration.storePath)
            } catch {
                throw .locked(error)
            }
        }
        defer { lock?.release() }
        let httpClient = HTTPClient(
            eventLoopGroupProvider: .singleton, configuration: UnipileClient.makeHTTPClientConfiguration())
        let outcome: Swift.Result<Value, Failure>
        do {
            let store = try await BridgeStores.open(configuration, synchronousFull: synchronousFull, logger: logger)
            var logger = logger
            if let leasing = store as? any SourceLeasing {
                // Several instances log into one place: each line says which one.
                logger[metadataKey: "instance"] = .string(leasing.instanceName)
            }
            if let startMetadata { logger.info("starting", metadata: startMetadata) }
            let bridge = Bridge(
                configuration: configuration, rules: rules, store: store, httpClient: httpClient, logger: logger)
            outcome = .success(try await body(bridge))
        } catch let error as StoreError {
            outcome = .failure(.store(error))
        } catch {
            outcome = .failure(.stopped(error))
        }
        try? await httpClient.shutdown()
        return try outcome.get()
    }

    /// The service group of the daemon. A closed standard output ends it quietly.
    private func runServices(_ bridge: Bridge) async throws {
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
            services.append(.init(service: ReloadOnHangup(bridge: bridge, reload: reload, logger: logger)))
        }
        var group = ServiceGroupConfiguration(services: services, logger: logger)
        group.gracefulShutdownSignals = [.sigterm, .sigint]
        group.cancellationSignals = []
        group.maximumGracefulShutdownDuration = shutdownDeadline
        do {
            // The promise of `run`: SIGTERM ends the process within 10 s. Should anything
            // not finish even after the deadline's cancellation, this exits anyway: what
            // was not recorded stays pending and goes out after the restart (at least once).
            let watchdog = Self.exitAfterStopSignal(within: shutdownDeadline + .milliseconds(1500), logger: logger)
            defer { watchdog.cancel() }
            try await ServiceGroup(configuration: group).run()
        } catch is Dispatcher.OutputClosed {
            // `chatbridge run | head -3`: a reader that went away is not an error.
        }
    }
}

extension BridgeDaemon {
    /// A task that, once SIGTERM or SIGINT arrives, waits `limit` and then ends the process
    /// with status 0 and an error line: the last resort behind graceful shutdown, so that a
    /// stop never hangs (systemd and the tests count on it).
    static func exitAfterStopSignal(within limit: Duration, logger: Logger) -> Task<Void, Never> {
        Task.detached {
            let stops = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            for await _ in stops {
                try? await Task.sleep(for: limit)
                if Task.isCancelled { return }
                logger.error(
                    "shutdown did not finish within \(limit.secondsText): exiting now; deliveries not yet recorded stay pending")
                exit(0)
            }
        }
    }
}

/// Reloads configuration and rules on every SIGHUP, until graceful shutdown.
struct ReloadOnHangup: Service {
    let bridge: Bridge
    let reload: @Sendable () -> (ChatBridgeConfiguration, RuleSet)?
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                logger.notice("SIGHUP: reloading config and rules")
                if let (configuration, rules) = reload() { bridge.reload(configuration: configuration, rules: rules) }
            }
        }
    }
}

/// A service that runs a closure until graceful shutdown cancels it.
package struct ClosureService: Service {
    let body: @Sendable () async throws -> Void

    package init(body: @escaping @Sendable () async throws -> Void) {
        self.body = body
    }

    package func run() async throws {
        try await cancelWhenGracefulShutdown { try await body() }
    }
}

/// Runs `body` until it returns, or until SIGINT or SIGTERM ends it gracefully (a stop
/// asked for by the user is a success): for commands such as `simulate` that serve until
/// stopped.
package func runUntilStopped(logger: Logger, _ body: @escaping @Sendable () async throws -> Void) async throws {
    var configuration = ServiceGroupConfiguration(services: [.init(service: ClosureService(body: body))], logger: logger)
    configuration.gracefulShutdownSignals = [.sigterm, .sigint]
    configuration.cancellationSignals = []
    try await ServiceGroup(configuration: configuration).run()
}
