import Foundation
import ChatBridgeCore

/// Everything `config/chatbridge.yaml` says, validated, with every default filled in and
/// every `${VAR}` substituted.
///
/// Load it with ``load(path:environment:currentDirectory:)``; tests can hand YAML text to
/// ``parse(yaml:file:baseDirectory:environment:)``. Both report every problem of the file
/// at once as a ``ConfigurationError``.
///
/// ```swift
/// let configuration = try ChatBridgeConfiguration.load(
///     path: ChatBridgeConfiguration.defaultPath(environment: environment),
///     environment: environment)
/// for source in configuration.sources { print(source.name, source.interval) }
/// ```
///
/// Relative paths (`store`, `rules`) are already absolute here: they were resolved
/// against ``baseDirectory``, the folder that holds the `config/` folder of the file,
/// or the file's own folder when it does not sit in a folder named `config`.
package struct ChatBridgeConfiguration: Sendable, Hashable {
    /// The configuration file, as an absolute path (empty when parsed from text without one).
    package var file: String
    /// The folder relative paths of the file are resolved against.
    package var baseDirectory: String
    /// The Unipile instances / account sets to poll; at least one, names unique.
    package var sources: [SourceConfiguration]
    /// The SQLite database (absolute). Default `state/chatbridge.sqlite`. With a
    /// PostgreSQL store, its URL with `***` for the password.
    package var storePath: String
    /// The PostgreSQL store several instances share (scale.md), when `store` is a
    /// `postgres://` URL; `nil` for a SQLite file.
    package var postgresStore: PostgresStoreURL?
    /// This process's name among instances sharing a store (`instance:`); `nil`: HOST-PID.
    package var instance: String?
    /// How long a source stays with an instance that stopped renewing its lease (`lease:`).
    package var lease: Duration = .seconds(30)
    /// A folder of `*.yaml` rule files, or one file (absolute). Default `rules/`.
    package var rulesPath: String
    /// Whether `rules` was written in the file: the default folder may be absent (no
    /// rules), a folder the user named must exist.
    package var rulesPathIsExplicit: Bool
    /// What the first complete poll of a source produces. Default ``BaselineMode/silent``.
    package var baseline: BaselineMode
    /// Events and finished deliveries older than this are pruned. Default 30 days.
    package var retention: Duration
    /// The named destinations rules send to, by name. Always holds `stdout`.
    package var sinks: [String: SinkConfiguration]
    /// Retry schedule and concurrency of deliveries.
    package var delivery: DeliveryConfiguration
    /// Where `/metrics` and `/healthz` are served; `nil` (the default) serves nothing.
    package var http: HTTPListenConfiguration?
    /// The secret values whose `${VAR}` was not set, when loaded with
    /// ``SecretUse/mayBeUnset``: `sources[0].api_key (UNIPILE_API_KEY)`. Empty otherwise.
    package var unresolvedSecrets: [String] = []
    /// What each `${NAME}` or `${file:PATH}` put into a secret value: a token inside a
    /// webhook URL or a body is not a value of its own, and a receiver may echo it.
    package var substitutedSecrets: [String] = []

    /// Whether a command needs the configuration's secrets.
    package enum SecretUse: Sendable {
        /// Every `${VAR}` must be set (`run`, `rules check`): the default.
        case required
        /// Read-only commands (`status`, `events`, `chats`, `deliveries`, `replay`,
        /// `explain`, `rules check --offline`) never send anything: a secret whose
        /// variable is not set is left unresolved (listed in ``unresolvedSecrets``, its
        /// value an unreachable placeholder) instead of being an error.
        case mayBeUnset
    }

    package init(
        file: String,
        baseDirectory: String,
        sources: [SourceConfiguration],
        storePath: String,
        rulesPath: String,
        rulesPathIsExplicit: Bool = false,
        baseline: BaselineMode = .silent,
        retention: Duration = .seconds(30 * 86_400),
        sinks: [String: SinkConfiguration] = [:],
        delivery: DeliveryConfiguration = DeliveryConfiguration(),
        http: HTTPListenConfiguration? = nil
    ) {
        self.file = file
        self.baseDirectory = baseDirectory
        self.sources = sources
        self.storePath = storePath
        self.rulesPath = rulesPath
        self.rulesPathIsExplicit = rulesPathIsExplicit
        self.baseline = baseline
        self.retention = retention
        var sinks = sinks
        if sinks[SinkConfiguration.standardOutputName] == nil {
            sinks[SinkConfiguration.standardOutputName] = .standardOutput
        }
        self.sinks = sinks
        self.delivery = delivery
        self.http = http
    }

    /// The sink names, sorted: what a rule's `send` may name.
    package var sinkNames: [String] { sinks.keys.sorted() }

    /// The source named `name`, if configured.
    package func source(named name: String) -> SourceConfiguration? {
        sources.first { $0.name == name }
    }
}

/// What the first complete poll of a source produces (`baseline:`).
package enum BaselineMode: String, Sendable, Hashable, CaseIterable {
    /// Stored silently: no `chat.*` events.
    case silent
    /// Every chat of the first poll is a `chat.added`.
    case emit
}

/// One Unipile instance / account set to poll (an item of `sources:`).
package struct SourceConfiguration: Sendable, Hashable {
    /// The providers the API's `account_type` filter accepts.
    package enum AccountType: String, Sendable, Hashable, CaseIterable {
        case whatsapp = "WHATSAPP"
        case linkedin = "LINKEDIN"
        case slack = "SLACK"
        case twitter = "TWITTER"
        case messenger = "MESSENGER"
        case instagram = "INSTAGRAM"
        case telegram = "TELEGRAM"
    }

    /// Unique, `[a-z0-9_-]+`; appears in events as `source`.
    package var name: String
    /// Base URL (http or https); `/api/v1/chats` is appended.
    package var url: URL
    /// Sent as `X-API-KEY`.
    package var apiKey: Secret
    /// Time between poll starts. Default 30 s.
    package var interval: Duration
    /// The API's `limit`, 1...250. Default 250.
    package var pageSize: Int
    /// Optional `account_type` filter.
    package var accountType: AccountType?
    /// Optional `account_id` filter (sent comma-separated); empty means no filter.
    package var accountIDs: [String]
    /// Optional `unread` filter: `true` unread chats only, `false` read chats only.
    package var unread: Bool?
    /// Per request. Default 30 s.
    package var timeout: Duration
    /// Requests per second across the source, `0` for no limit. Default 5.
    package var maxRequestsPerSecond: Double

    package init(
        name: String,
        url: URL,
        apiKey: Secret,
        interval: Duration = .seconds(30),
        pageSize: Int = 250,
        accountType: AccountType? = nil,
        accountIDs: [String] = [],
        unread: Bool? = nil,
        timeout: Duration = .seconds(30),
        maxRequestsPerSecond: Double = 5
    ) {
        self.name = name
        self.url = url
        self.apiKey = apiKey
        self.interval = interval
        self.pageSize = pageSize
        self.accountType = accountType
        self.accountIDs = accountIDs
        self.unread = unread
        self.timeout = timeout
        self.maxRequestsPerSecond = maxRequestsPerSecond
    }

    /// A stable text of the filters that decide which chats the source sees
    /// (`account_type`, the set of `account_ids`, `unread`), stored with each snapshot:
    /// when it changes, the next poll is a new baseline instead of a flood of
    /// `chat.removed` (events.md). The URL, interval, page size and the order or
    /// repetition of account ids do not change it.
    ///
    /// ```
    /// {"account_type":"LINKEDIN","account_ids":["acc_1","acc_2"],"unread":true}
    /// ```
    package var filterFingerprint: String {
        let accountIDs = Set(accountIDs).sorted().map { JSONValue.string($0) }
        let object: JSONObject = [
            "account_type": accountType.map { .string($0.rawValue) } ?? .null,
            "account_ids": .array(accountIDs),
            "unread": unread.map { .bool($0) } ?? .null,
        ]
        return JSONValue.object(object).compactString
    }
}

/// A named destination (an entry of `sinks:`).
package struct SinkConfiguration: Sendable, Hashable {
    /// The sink that always exists, even when not configured.
    package static let standardOutputName = "stdout"
    /// `stdout` as it is when not configured.
    package static let standardOutput = SinkConfiguration(name: standardOutputName, kind: .standardOutput)

    /// What the sink is, with the options of its type.
    package enum Kind: Sendable, Hashable {
        /// `type: stdout`: one JSON line per delivery on standard output.
        case standardOutput
        /// `type: webhook`: an HTTP POST.
        case webhook(WebhookSinkConfiguration)
        /// `type: exec`: a local command.
        case exec(ExecSinkConfiguration)
        /// `type: http`: any HTTP request, shaped by templates.
        case http(HTTPSinkConfiguration)
    }

    /// The key under `sinks:`; what rules name in `send`.
    package var name: String
    package var kind: Kind

    package init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The `type:` word of the sink: `stdout`, `webhook`, `exec` or `http`.
    package var typeName: String {
        switch kind {
        case .standardOutput: "stdout"
        case .webhook: "webhook"
        case .exec: "exec"
        case .http: "http"
        }
    }
}

/// Options of a `type: webhook` sink.
package struct WebhookSinkConfiguration: Sendable, Hashable {
    /// The body shapes (`format:`), one type for configuration and delivery alike.
    package typealias Format = DeliveryFormat

    /// Where to POST; a secret (incoming-webhook URLs carry their own credentials).
    package var url: Secret
    /// Default ``Format/json``.
    package var format: Format
    /// Optional Mustache text for slack/discord/teams bodies.
    package var template: String?
    /// Standard Webhooks signing secrets (`whsec_...` or raw): `secret:` gives one,
    /// `secrets: [new, old]` several while a receiver moves to a new one (each request
    /// then carries one `v1,` signature per secret). Empty: requests are not signed.
    package var secrets: [Secret]
    /// Extra request headers, by name as written; values are secrets (often tokens).
    package var headers: [String: Secret]
    /// Per request. Default 10 s.
    package var timeout: Duration

    package init(
        url: Secret,
        format: Format = .json,
        template: String? = nil,
        secrets: [Secret] = [],
        headers: [String: Secret] = [:],
        timeout: Duration = .seconds(10)
    ) {
        self.url = url
        self.format = format
        self.template = template
        self.secrets = secrets
        self.headers = headers
        self.timeout = timeout
    }
}

/// Options of a `type: exec` sink.
package struct ExecSinkConfiguration: Sendable, Hashable {
    /// How the command is written.
    package enum Command: Sendable, Hashable {
        /// A YAML list: program and arguments, run directly (no shell); each argument
        /// may be a Mustache template.
        case arguments([String])
        /// A YAML string: run by `/bin/sh -c`, without templating (chat content never
        /// becomes shell text).
        case shell(String)
    }

    package var command: Command
    /// The command is stopped past this. Default 10 s.
    package var timeout: Duration
    /// Variables of chatbridge's own environment passed on to the command by name
    /// (`env: [NAME, ...]`). Nothing else of it is, beyond `PATH`, `HOME`, `LANG`,
    /// `LC_*` and `TZ`: a command never sees the API key or a webhook secret by accident.
    package var passedVariables: [String]
    /// Variables set for the command (`env: {NAME: value}`, values with `${VAR}`);
    /// secrets, never logged.
    package var variables: [String: Secret]

    package init(
        command: Command, timeout: Duration = .seconds(10), passedVariables: [String] = [],
        variables: [String: Secret] = [:]
    ) {
        self.command = command
        self.timeout = timeout
        self.passedVariables = passedVariables
        self.variables = variables
    }
}

/// `delivery:`: the retry schedule and how many deliveries run at once.
package struct DeliveryConfiguration: Sendable, Hashable {
    /// Attempts before a delivery is dead; at least 1. Default 10.
    package var maxAttempts: Int
    /// The first retry waits up to this (exponential, full jitter). Default 1 s.
    package var initialBackoff: Duration
    /// No retry waits longer than this. Default 10 min.
    package var maxBackoff: Duration
    /// Deliveries in flight per sink; at least 1. Default 8.
    package var concurrency: Int

    package init(
        maxAttempts: Int = 10,
        initialBackoff: Duration = .seconds(1),
        maxBackoff: Duration = .seconds(600),
        concurrency: Int = 8
    ) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.concurrency = concurrency
    }
}

/// `http: {listen: HOST:PORT}`: where `/metrics` and `/healthz` are served.
package struct HTTPListenConfiguration: Sendable, Hashable {
    /// An IP address or host name, without brackets for IPv6 (`::1`).
    package var host: String
    /// 0...65535; 0 lets the system choose a free port.
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

extension ChatBridgeConfiguration {
    /// The keys whose change from `running` a reload cannot apply: the store and the
    /// operations server are opened once, at start. A reload keeps what runs and says so.
    ///
    /// ```swift
    /// reloaded.keysNeedingRestart(from: running)   // ["store", "http.listen"]
    /// ```
    package func keysNeedingRestart(from running: ChatBridgeConfiguration) -> [String] {
        var keys: [String] = []
        if storePath != running.storePath || postgresStore != running.postgresStore { keys.append("store") }
        if instance != running.instance { keys.append("instance") }
        if http != running.http { keys.append("http.listen") }
        return keys
    }
}

