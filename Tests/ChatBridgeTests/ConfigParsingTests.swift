import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Detect
import Formats
import Rules
import Runtime
import Store
import StoreSQLite
import Unipile
import Foundation
import Testing

/// Parses `yaml` as `config/chatbridge.yaml` of `/srv/bridge` and returns its diagnostics,
/// as `LINE:COLUMN message` lines; records an issue when it parses without error.
private func configProblems(
    _ yaml: String,
    environment: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> [String] {
    do {
        _ = try ChatBridgeConfiguration.parse(
            yaml: yaml, file: "config/chatbridge.yaml", baseDirectory: "/srv/bridge", environment: environment)
        Issue.record("expected configuration errors", sourceLocation: sourceLocation)
        return []
    } catch {
        for diagnostic in error.diagnostics {
            #expect(diagnostic.file == "config/chatbridge.yaml", sourceLocation: sourceLocation)
        }
        return error.diagnostics.map { "\($0.line):\($0.column) \($0.message)" }
    }
}

private func parseConfig(
    _ yaml: String,
    environment: [String: String] = ["UNIPILE_API_KEY": "sk-test-key"]
) throws -> ChatBridgeConfiguration {
    try ChatBridgeConfiguration.parse(
        yaml: yaml, file: "/srv/bridge/config/chatbridge.yaml", environment: environment)
}

private let minimalConfig = """
    sources:
      - name: main
        url: https://api1.unipile.com:13111
        api_key: ${UNIPILE_API_KEY}
    """

@Suite("Config parsing")
struct ConfigParsingTests {
    // MARK: Defaults and values

    @Test("every default of config.md")
    func defaults() throws {
        let configuration = try parseConfig(minimalConfig)
        #expect(configuration.sources.count == 1)
        let source = try #require(configuration.sources.first)
        #expect(source.name == "main")
        #expect(source.url == URL(string: "https://api1.unipile.com:13111"))
        #expect(source.apiKey.value == "sk-test-key")
        #expect(source.interval == .seconds(30))
        #expect(source.pageSize == 250)
        #expect(source.accountType == nil)
        #expect(source.accountIDs == [])
        #expect(source.unread == nil)
        #expect(source.timeout == .seconds(30))
        #expect(source.maxRequestsPerSecond == 5)

        #expect(configuration.file == "/srv/bridge/config/chatbridge.yaml")
        #expect(configuration.baseDirectory == "/srv/bridge")
        #expect(configuration.storePath == "/srv/bridge/state/chatbridge.sqlite")
        #expect(configuration.rulesPath == "/srv/bridge/rules")
        #expect(configuration.rulesPathIsExplicit == false)
        #expect(configuration.baseline == .silent)
        #expect(configuration.retention == .seconds(30 * 86_400))
        #expect(configuration.sinks == ["stdout": SinkConfiguration(name: "stdout", kind: .standardOutput)])
        #expect(configuration.sinkNames == ["stdout"])
        #expect(configuration.delivery.maxAttempts == 10)
        #expect(configuration.delivery.initialBackoff == .seconds(1))
        #expect(configuration.delivery.maxBackoff == .seconds(600))
        #expect(configuration.delivery.concurrency == 8)
        #expect(configuration.http == nil)
    }

    @Test("every key set to something other than its default")
    func everyKey() throws {
        let configuration = try parseConfig("""
            sources:
              - name: sales_eu-1
                url: http://127.0.0.1:13111/prefix
                api_key: plain-key
                interval: 1h30m
                page_size: 1
                account_type: LINKEDIN
                account_ids: [acc_2, acc_1]
                unread: false
                timeout: 500ms
                max_requests_per_second: 0.5
              - name: other
                url: https://x.example
                api_key: k2
                account_ids: acc_9
                unread: true
                max_requests_per_second: 0
            store: /var/lib/chatbridge/db.sqlite
            rules: ../shared/rules.yaml
            baseline: emit
            retention: 7d
            sinks:
              team-slack:
                type: webhook
                url: https://hooks.slack.example/services/T/B/X
                format: slack
                template: "{{chat.name}}: {{chat.unread_count}} unread"
                secret: whsec_c2VjcmV0
                headers: { X-Team: sales, X-Count: 3 }
                timeout: 2s
              plain-hook:
                type: webhook
                url: https://example.com/hook
              notify:
                type: exec
                command: ["/usr/local/bin/notify", "--title", "{{chat.name}}"]
                timeout: 1m
              shell:
                type: exec
                command: logger -t chatbridge
            delivery:
              max_attempts: 3
              initial_backoff: 250ms
              max_backoff: 1m
              concurrency: 2
            http:
              listen: 127.0.0.1:9464
            """)
        #expect(configuration.sources.map(\.name) == ["sales_eu-1", "other"])
        let first = configuration.sources[0]
        #expect(first.url.absoluteString == "http://127.0.0.1:13111/prefix")
        #expect(first.apiKey == Secret("plain-key"))
        #expect(first.interval == .seconds(5_400))
        #expect(first.pageSize == 1)
        #expect(first.accountType == .linkedin)
        #expect(first.accountIDs == ["acc_2", "acc_1"])
        #expect(first.unread == false)
        #expect(first.timeout == .milliseconds(500))
        #expect(first.maxRequestsPerSecond == 0.5)
        let second = configuration.sources[1]
        #expect(second.accountIDs == ["acc_9"])
        #expect(second.unread == true)
        #expect(second.maxRequestsPerSecond == 0)

        #expect(configuration.storePath == "/var/lib/chatbridge/db.sqlite")
        #expect(configuration.rulesPath == "/srv/shared/rules.yaml")
        #expect(configuration.rulesPathIsExplicit)
        #expect(configuration.baseline == .emit)
        #expect(configuration.retention == .seconds(7 * 86_400))

        #expect(configuration.sinkNames == ["notify", "plain-hook", "shell", "stdout", "team-slack"])
        #expect(configuration.sinks["stdout"]?.kind == .standardOutput)
        #expect(configuration.sinks["team-slack"]?.typeName == "webhook")
        #expect(configuration.sinks["team-slack"]?.kind == .webhook(WebhookSinkConfiguration(
            url: Secret("https://hooks.slack.example/services/T/B/X"),
            format: .slack,
            template: "{{chat.name}}: {{chat.unread_count}} unread",
            secrets: [Secret("whsec_c2VjcmV0")],
            headers: ["X-Team": Secret("sales"), "X-Count": Secret("3")],
            timeout: .seconds(2)
        )))
        #expect(configuration.sinks["plain-hook"]?.kind == .webhook(WebhookSinkConfiguration(
            url: Secret("https://example.com/hook"), format: .json, template: nil, secrets: [], headers: [:], timeout: .seconds(10)
        )))
        #expect(configuration.sinks["notify"]?.kind == .exec(ExecSinkConfiguration(
            command: .arguments(["/usr/local/bin/notify", "--title", "{{chat.name}}"]), timeout: .seconds(60)
        )))
        #expect(configuration.sinks["shell"]?.kind == .exec(ExecSinkConfiguration(
            command: .shell("logger -t chatbridge"), timeout: .seconds(10)
        )))
        #expect(configuration.delivery == DeliveryConfiguration(
            maxAttempts: 3, initialBackoff: .milliseconds(250), maxBackoff: .seconds(60), concurrency: 2))
        #expect(configuration.http == HTTPListenConfiguration(host: "127.0.0.1", port: 9464))
    }

    @Test("http.listen accepts IPv6 in brackets and any host name")
    func listenAddresses() throws {
        let ipv6 = try parseConfig(minimalConfig + "\nhttp:\n  listen: \"[::1]:0\"\n")
        #expect(ipv6.http == HTTPListenConfiguration(host: "::1", port: 0))
        let named = try parseConfig(minimalConfig + "\nhttp:\n  listen: localhost:9464\n")
        #expect(named.http == HTTPListenConfiguration(host: "localhost", port: 9464))
        let off = try parseConfig(minimalConfig + "\nhttp: {}\n")
        #expect(off.http == nil)
    }

    @Test("a configured stdout sink without options, or written as `stdout:`, is the standard output")
    func standardOutputSink() throws {
        let bare = try parseConfig(minimalConfig + "\nsinks:\n  stdout:\n")
        #expect(bare.sinks == ["stdout": .standardOutput])
        let typed = try parseConfig(minimalConfig + "\nsinks:\n  stdout: {type: stdout}\n  log: {type: stdout}\n")
        #expect(typed.sinkNames == ["log", "stdout"])
        #expect(typed.sinks["log"]?.kind == .standardOutput)
    }

    // MARK: Environment variables

    @Test("${VAR} and ${VAR:-default} are substituted in values before validation")
    func substitution() throws {
        let yaml = """
            sources:
              - name: ${SOURCE_NAME:-main}
                url: ${UNIPILE_URL:-https://api1.unipile.com:13111}
                api_key: ${UNIPILE_API_KEY}
                interval: ${POLL_INTERVAL:-45s}
                page_size: ${PAGE_SIZE:-100}
                unread: ${UNREAD_ONLY:-true}
                account_type: ${ACCOUNT_TYPE:-}
            sinks:
              hook:
                type: webhook
                url: "https://example.com/hook?cost=$$5&x=${HOOK_TOKEN}"
                secret: "pa$word"
            """
        let defaults = try parseConfig(yaml, environment: ["UNIPILE_API_KEY": "k1", "HOOK_TOKEN": "t"])
        let source = try #require(defaults.sources.first)
        #expect(source.name == "main")
        #expect(source.url.absoluteString == "https://api1.unipile.com:13111")
        #expect(source.apiKey.value == "k1")
        #expect(source.interval == .seconds(45))
        #expect(source.pageSize == 100)
        #expect(source.unread == true)
        #expect(source.accountType == nil, "an empty value leaves an optional filter unset")
        guard case .webhook(let hook)? = defaults.sinks["hook"]?.kind else {
            Issue.record("hook is not a webhook")
            return
        }
        #expect(hook.url.value == "https://example.com/hook?cost=$5&x=t")
        #expect(hook.secrets.first?.value == "pa$word", "a lone $ is kept as written")

        let overridden = try parseConfig(yaml, environment: [
            "UNIPILE_API_KEY": "k2", "HOOK_TOKEN": "t", "SOURCE_NAME": "eu", "UNIPILE_URL": "http://127.0.0.1:9",
            "POLL_INTERVAL": "2m", "PAGE_SIZE": "7", "UNREAD_ONLY": "false", "ACCOUNT_TYPE": "WHATSAPP",
        ])
        let changed = try #require(overridden.sources.first)
        #expect(changed.name == "eu")
        #expect(changed.url.absoluteString == "http://127.0.0.1:9")
        #expect(changed.interval == .seconds(120))
        #expect(changed.pageSize == 7)
        #expect(changed.unread == false)
        #expect(changed.accountType == .whatsapp)

        // An empty variable takes the default, as in a shell.
        let empty = try parseConfig(yaml, environment: ["UNIPILE_API_KEY": "k", "HOOK_TOKEN": "t", "POLL_INTERVAL": ""])
        #expect(empty.sources.first?.interval == .seconds(45))
    }

    @Test("a missing variable is an error naming the variable and its place, never a value")
    func missingVariable() {
        let problems = configProblems("""
            sources:
              - name: main
                url: https://api1.unipile.com:13111
                api_key: ${UNIPILE_API_KEY}
                interval: ${POLL_INTERVAL}
            sinks:
              hook: {type: webhook, url: "${SLACK_WEBHOOK_URL}", secret: "${OOPS"}
            """, environment: ["POLL_INTERVAL": "30s", "UNRELATED": "sk-should-not-appear"])
        #expect(problems == [
            "4:14 sources[0].api_key: environment variable UNIPILE_API_KEY is not set (export it, or write ${UNIPILE_API_KEY:-default} in the file to give a default)",
            "7:30 sinks.hook.url: environment variable SLACK_WEBHOOK_URL is not set (export it, or write ${SLACK_WEBHOOK_URL:-default} in the file to give a default)",
            "7:62 sinks.hook.secret: unterminated '${': write ${NAME} or ${NAME:-default} (and $$ for a literal $)",
        ])
    }

    @Test("a URL's port must be one a connection can use", arguments: ["0", "65536", "99999"])
    func urlPortsOutOfRange(port: String) {
        let problems = configProblems("""
            sources:
              - name: main
                url: http://127.0.0.1:\(port)
                api_key: k
            sinks:
              hook: {type: webhook, url: "https://hooks.example:\(port)/x"}
            """)
        #expect(problems == [
            "3:10 sources[0].url has port \(port): a port is from 1 to 65535",
            "6:30 sinks.hook.url has port \(port): a port is from 1 to 65535",
        ])
    }

    @Test("a reload names the keys it cannot apply: the store, the instance, http.listen")
    func keysNeedingRestart() throws {
        let running = try parseConfig(minimalConfig + "\nstore: a.sqlite\nhttp: {listen: 127.0.0.1:9464}\n")
        #expect(running.keysNeedingRestart(from: running).isEmpty)
        let moved = try parseConfig(minimalConfig + "\nstore: b.sqlite\nhttp: {listen: 127.0.0.1:9465}\n")
        #expect(moved.keysNeedingRestart(from: running) == ["store", "http.listen"])
        let sourcesOnly = try parseConfig(minimalConfig + "\n    interval: 5s\nstore: a.sqlite\nhttp: {listen: 127.0.0.1:9464}\n")
        #expect(sourcesOnly.keysNeedingRestart(from: running).isEmpty, "sources, sinks and rules reload")
    }

    @Test("keys are not substituted")
    func keysAreNotSubstituted() {
        let problems = configProblems(minimalConfig + "\n${EXTRA}: 1\n", environment: ["UNIPILE_API_KEY": "k", "EXTRA": "store"])
        #expect(problems.count == 1)
        #expect(problems.first?.hasPrefix("5:1 unknown key '${EXTRA}'") == true)
    }

    // MARK: Validation, with positions

    @Test("every problem of a source is reported at its line and column")
    func sourceProblems() {
        let problems = configProblems("""
            sources:
              - name: Main Source
                url: ftp://example.com
                api_key: k
                interval: 30
                page_size: 0
                acount_type: LINKEDIN
              - name: second
                url: https://x.example
                api_key: k
                page_size: 251
                account_type: linkedin
                unread: maybe
                max_requests_per_second: -1
                timeout: 0s
            baseline: loud
            retention: 1.5h
            delivery:
              max_attempts: 0
              concurrency: many
            http:
              listen: localhost
            """)
        #expect(problems == [
            "2:11 sources[0].name 'Main Source' may only hold a-z, 0-9, _ and -",
            "3:10 sources[0].url is not a valid http(s) URL",
            "5:15 sources[0].interval: '30' has no unit: write 30s, not 30 (units: ms, s, m, h, d)",
            "6:16 sources[0].page_size must be from 1 to 250, not 0",
            "7:5 unknown key 'acount_type' in sources[0] (did you mean 'account_type'?)",
            "11:16 sources[1].page_size must be from 1 to 250, not 251",
            "12:19 sources[1].account_type must be one of WHATSAPP, LINKEDIN, SLACK, TWITTER, MESSENGER, INSTAGRAM, TELEGRAM, not 'linkedin' (did you mean LINKEDIN?)",
            "13:13 sources[1].unread must be true or false, not 'maybe'",
            "14:30 sources[1].max_requests_per_second must be a number of 0 or more (0 = no limit), not '-1'",
            "15:14 sources[1].timeout must be longer than 0s",
            "16:11 baseline must be one of silent, emit, not 'loud'",
            "17:12 retention: '1.5h' is not a duration: write whole numbers with a unit (ms, s, m, h, d), e.g. 500ms, 30s, 5m, 1h30m, 30d",
            "19:17 delivery.max_attempts must be from 1 to 1000000, not 0",
            "20:16 delivery.concurrency must be a whole number from 1 to 10000, not 'many'",
            "22:11 http.listen must be HOST:PORT, e.g. 127.0.0.1:9464, not 'localhost'",
        ])
    }

    @Test("page_size 0 and 251 are refused, 1 and 250 accepted", arguments: [0, 1, 250, 251])
    func pageSizeBounds(pageSize: Int) throws {
        let yaml = minimalConfig + "\n    page_size: \(pageSize)\n"
        if (1...250).contains(pageSize) {
            #expect(try parseConfig(yaml).sources.first?.pageSize == pageSize)
        } else {
            #expect(configProblems(yaml, environment: ["UNIPILE_API_KEY": "k"]) == [
                "5:16 sources[0].page_size must be from 1 to 250, not \(pageSize)",
            ])
        }
    }

    @Test("required keys, missing or empty")
    func requiredKeys() {
        #expect(configProblems("""
            sources:
              - name: main
                interval: 5m
              - name:
                url: https://x.example
                api_key: ""
            """) == [
            "2:5 sources[0].url is required",
            "2:5 sources[0].api_key is required",
            "4:10 sources[1].name must not be empty",
            "6:14 sources[1].api_key must not be empty",
        ])
        #expect(configProblems("store: db.sqlite\n") == [
            "1:1 `sources` is required: list at least one source with name, url and api_key",
        ])
        #expect(configProblems("sources: []\n") == [
            "1:10 `sources` is empty: list at least one source with name, url and api_key",
        ])
        #expect(configProblems("") == [
            "1:1 the configuration is empty: at least `sources:` with one source (name, url, api_key) is required",
        ])
    }

    @Test("wrong shapes: a list where a map is expected, and the other way round")
    func wrongShapes() {
        #expect(configProblems("""
            sources:
              name: main
            sinks:
              - stdout
            delivery: fast
            """) == [
            "2:3 sources must be a list, not a map",
            "4:3 sinks must be a map of keys, not a list",
            "5:11 delivery must be a map of keys, not a single value",
        ])
        #expect(configProblems("- sources\n") == ["1:1 the configuration must be a map of keys, not a list"])
        #expect(configProblems("""
            sources:
              - just-a-name
              - name: [main]
                url: {a: b}
                api_key: k
                account_ids: [acc_1, [nested], ""]
            """) == [
            "2:5 sources[0] must be a map of keys, not a single value",
            "3:11 sources[1].name must be a string, not a list",
            "4:10 sources[1].url must be a string, not a map",
            "6:26 sources[1].account_ids[1] must be a string, not a list",
            "6:36 sources[1].account_ids[2] must not be empty",
        ])
    }

    @Test("unknown keys at every depth, with a suggestion when one is close")
    func unknownKeys() {
        #expect(configProblems("""
            sources:
              - name: main
                url: https://x.example
                api_key: k
            sink:
              stdout: {type: stdout, format: json}
            delivery:
              retries: 3
            http:
              listen: 127.0.0.1:9464
              tls: true
            """) == [
            "5:1 unknown key 'sink' (did you mean 'sinks'?)",
            "8:3 unknown key 'retries' in delivery; known keys: max_attempts, initial_backoff, max_backoff, concurrency",
            "11:3 unknown key 'tls' in http; known keys: listen",
        ])
    }

    @Test("sink problems: names, types, options of each type")
    func sinkProblems() {
        #expect(configProblems("""
            sources:
              - {name: main, url: "https://a.example", api_key: k1}
              - {name: main, url: "https://b.example", api_key: k2}
            sinks:
              hook:
                type: webhook
                format: markdown
                command: [x]
              runner:
                type: exec
              stdout:
                type: webhook
                url: https://x.example
              other:
                type: carrier-pigeon
              bad name:
                type: stdout
              log:
                type: stdout
                template: x
              untyped: {}
              empty-command: {type: exec, command: []}
              headers:
                type: webhook
                url: https://x.example
                headers: {"Bad Name": x, webhook-signature: y, X-A: a, x-a: b}
            delivery:
              initial_backoff: 1m
              max_backoff: 30s
            """) == [
            "3:12 sources[1].name 'main' is already the name of the source at line 2: names must be unique",
            "6:5 sinks.hook.url is required",
            "7:13 sinks.hook.format must be one of json, slack, discord, teams, not 'markdown'",
            "8:5 unknown key 'command' in a webhook sink; known keys: type, url, format, template, secret, secrets, headers, timeout",
            "10:5 sinks.runner.command is required: a list [program, arg, ...] (no shell) or a string run by /bin/sh -c",
            "12:11 the sink named `stdout` is the standard output; give a webhook sink another name",
            "15:11 sinks.other.type must be one of stdout, webhook, exec, http, not 'carrier-pigeon'",
            "16:3 sink name 'bad name' may only hold letters, digits, _, . and -",
            "20:5 unknown key 'template' in a stdout sink (it has no options); known keys: type",
            "21:12 sinks.untyped needs a `type`: stdout, webhook, exec or http",
            "22:40 sinks.empty-command.command must name a program: [program, arg, ...]",
            "26:15 sinks.headers.headers: 'Bad Name' is not a valid header name",
            "26:30 sinks.headers.headers: webhook-signature is set by chatbridge and cannot be configured",
            "26:60 sinks.headers.headers: x-a is already set at line 26 (header names ignore case)",
            "29:16 delivery.max_backoff (30s) is shorter than delivery.initial_backoff (1m)",
        ])
    }

    @Test("a sink whose `type` is misspelt is told which key was meant")
    func misspeltSinkType() {
        #expect(configProblems("""
            sources:
              - {name: main, url: "https://a.example", api_key: k1}
            sinks:
              hook: {typ: webhook, url: "https://x.example"}
            """) == ["4:9 sinks.hook needs a `type`: stdout, webhook, exec or http (did you mean 'type' for 'typ'?)"])
    }

    @Test("all problems are reported in file order, one line each")
    func errorDescription() throws {
        do {
            _ = try ChatBridgeConfiguration.parse(
                yaml: "retention: 30\nsources: 3\n", file: "bridge.yaml", baseDirectory: "/", environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.description == """
                bridge.yaml:1:12: retention: '30' has no unit: write 30s, not 30 (units: ms, s, m, h, d)
                bridge.yaml:2:10: sources must be a list, not a single value
                """)
        }
    }

    @Test("YAML syntax errors keep their position")
    func syntaxErrors() {
        let badCharacter = configProblems("""
            sources:
              - name: main
                url: @here
            """)
        #expect(badCharacter.count == 1)
        #expect(badCharacter.first?.hasPrefix("3:10 YAML syntax error: found character that cannot start any token") == true)

        let duplicate = configProblems("""
            sources:
              - name: main
                url: https://x.example
                api_key: k
                url: https://y.example
            """)
        #expect(duplicate == ["5:5 duplicate key 'url': it is already set at line 3"])

        // Inside the flow list, "main store" reads as one value; the colon after it is the error.
        let unclosed = configProblems("sources: [main\nstore: x\n")
        #expect(unclosed == ["2:6 YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 10)"])

        // README's rotation example, unquoted: `{` starts a map inside the brackets.
        let unquoted = configProblems(minimalConfig + "\nsinks:\n  hook:\n    type: webhook\n    url: https://h.example\n    secrets: [${NEW}, ${OLD}]\n")
        #expect(unquoted.count == 1)
        #expect(unquoted.first?.hasSuffix(#"; inside [ ] or { }, write each ${...} in quotes: ["${A}", "${B}"]"#) == true, "\(unquoted)")

        let twoDocuments = configProblems(minimalConfig + "\n---\nstore: x\n")
        #expect(twoDocuments == ["5:1 the file holds more than one YAML document (a second `---`): keep one"])
    }

    // MARK: Filter fingerprint

    @Test("the filter fingerprint changes with the filters only")
    func filterFingerprint() {
        let key = Secret("k")
        let url = URL(string: "https://a.example")!
        let base = SourceConfiguration(
            name: "main", url: url, apiKey: key, accountType: .linkedin, accountIDs: ["acc_1", "acc_2"], unread: true)
        let fingerprint = base.filterFingerprint
        #expect(fingerprint == #"{"account_type":"LINKEDIN","account_ids":["acc_1","acc_2"],"unread":true}"#)

        var same = base
        same.name = "renamed"
        same.url = URL(string: "http://127.0.0.1:1/other")!
        same.apiKey = Secret("other")
        same.interval = .seconds(1)
        same.pageSize = 7
        same.timeout = .seconds(2)
        same.maxRequestsPerSecond = 0
        same.accountIDs = ["acc_2", "acc_1", "acc_2"]
        #expect(same.filterFingerprint == fingerprint)

        var changes: [SourceConfiguration] = []
        for change in 0..<6 {
            var changed = base
            switch change {
            case 0: changed.accountType = nil
            case 1: changed.accountType = .whatsapp
            case 2: changed.accountIDs = ["acc_1"]
            case 3: changed.accountIDs = []
            case 4: changed.unread = false
            default: changed.unread = nil
            }
            changes.append(changed)
        }
        let fingerprints = Set(changes.map(\.filterFingerprint) + [fingerprint])
        #expect(fingerprints.count == 7, "each filter change gives a different fingerprint")
    }

    @Test("the fingerprint of a parsed source ignores url, interval and page_size")
    func parsedFingerprint() throws {
        let first = try parseConfig(minimalConfig + "\n    account_ids: [b, a]\n    interval: 10s\n")
        let second = try parseConfig("""
            sources:
              - name: main
                url: http://127.0.0.1:13111
                api_key: other
                page_size: 50
                account_ids: [a, b]
            """)
        #expect(first.sources[0].filterFingerprint == second.sources[0].filterFingerprint)
    }

    // MARK: Secrets

    @Test("an API key with a control character is refused without being echoed", arguments: ["\r", "\n", "\u{01}"])
    func apiKeyWithAControlCharacter(character: String) {
        let problems = configProblems(
            "sources:\n  - name: main\n    url: http://127.0.0.1:13111\n    api_key: ${KEY}\n",
            environment: ["KEY": "SECRET-KEY-7" + character])
        #expect(problems == [
            "4:14 sources[0].api_key holds a control character (a carriage return from a file with Windows line endings?): an HTTP header cannot carry it",
        ])
    }

    @Test("no error and no description ever holds a secret's value")
    func secretsStaySecret() throws {
        let secrets = [
            "SECRET-API-KEY-1", "SECRET-HOOK-URL-2", "SECRET-SIGNING-3", "SECRET-HEADER-4", "SECRET-ENV-HOOK-5",
            "SECRET-SOURCE-URL-6",
        ]
        let environment = ["HOOK_FROM_ENV": "not a url SECRET-ENV-HOOK-5", "API": "SECRET-API-KEY-1"]
        let broken = """
            sources:
              - name: main
                url: "https://api.example/ SECRET-SOURCE-URL-6"
                api_key: ${API}
                interval: 30
                page_size: lots
              - name: Bad
                url: https://api.example
                api_key: SECRET-API-KEY-1
            sinks:
              hook:
                type: webhook
                url: "hooks: SECRET-HOOK-URL-2"
                secret: SECRET-SIGNING-3
                headers: {Authorization: "Bearer SECRET-HEADER-4\\r\\nX-Evil: 1", "Bad Header": SECRET-HEADER-4}
                timeout: soon
              env-hook:
                type: webhook
                url: ${HOOK_FROM_ENV}
                secret: ${MISSING_SECRET}
            """
        do {
            _ = try ChatBridgeConfiguration.parse(
                yaml: broken, file: "config/chatbridge.yaml", baseDirectory: "/srv", environment: environment)
            Issue.record("expected errors")
        } catch {
            #expect(error.diagnostics.count >= 8)
            let texts = [error.description, String(reflecting: error), "\(error.diagnostics)"]
            for text in texts {
                for secret in secrets.dropLast() {
                    #expect(!text.contains(secret), "a secret leaked into: \(text)")
                }
                #expect(!text.contains("SECRET-SOURCE-URL-6"))
            }
            #expect(error.description.contains("config/chatbridge.yaml:3:10: sources[0].url is not a valid http(s) URL"))
            #expect(error.description.contains("sinks.hook.url is not a valid http(s) URL"))
            #expect(error.description.contains("sinks.env-hook.url is not a valid http(s) URL"))
            #expect(error.description.contains("sinks.hook.headers.Authorization must not contain line breaks"))
            #expect(error.description.contains("environment variable MISSING_SECRET is not set"))
        }

        // A valid configuration prints its secrets as <redacted>, however it is printed.
        let valid = try ChatBridgeConfiguration.parse(yaml: """
            sources:
              - {name: main, url: "https://api.example", api_key: SECRET-API-KEY-1}
            sinks:
              hook:
                type: webhook
                url: https://hooks.example/SECRET-HOOK-URL-2
                secret: SECRET-SIGNING-3
                headers: {Authorization: Bearer SECRET-HEADER-4}
            """, file: "c.yaml", baseDirectory: "/srv", environment: [:])
        var dumped = ""
        dump(valid, to: &dumped)
        for text in [String(describing: valid), String(reflecting: valid), dumped] {
            for secret in secrets {
                #expect(!text.contains(secret), "a secret leaked into: \(text)")
            }
            #expect(text.contains("<redacted>"))
        }
    }

    @Test func webhookSecretsRotateAndBadWhsecSecretsAreRefusedWithTheirPlace() throws {
        let rotating = try parseConfig(minimalConfig + """

            sinks:
              hook:
                type: webhook
                url: https://example.com/hook
                secrets: [whsec_bmV3LXNlY3JldA==, "old raw secret"]
            """)
        guard case .webhook(let hook)? = rotating.sinks["hook"]?.kind else {
            Issue.record("no webhook sink")
            return
        }
        #expect(hook.secrets.map(\.value) == ["whsec_bmV3LXNlY3JldA==", "old raw secret"])
        let problems = configProblems(minimalConfig + """

            sinks:
              hook:
                type: webhook
                url: https://example.com/hook
                secret: whsec_not*base64!
              both:
                type: webhook
                url: https://example.com/hook
                secret: a
                secrets: [b]
            """, environment: ["UNIPILE_API_KEY": "k"])
        #expect(problems.contains("9:13 sinks.hook: a whsec_ secret must be base64 after `whsec_` (this one is not)"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix("14:5 sinks.both: give `secret` or `secrets`, not both") }, "\(problems)")
        #expect(!problems.joined().contains("not*base64"), "the secret is never echoed")
    }
}
