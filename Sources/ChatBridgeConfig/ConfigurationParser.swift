import Foundation
import Yams
import ChatBridgeCore

/// Walks the YAML node tree of a configuration file, key by key, and builds the model.
///
/// It does not decode with `Codable` on purpose: every problem must carry the line and
/// column it was found at, unknown keys must be reported (a typo must not silently
/// disable a filter), and it must go on after a problem so that the user sees all of
/// them at once. Each reader records a diagnostic and returns `nil` when the value is
/// unusable; the caller then carries on with the default, and ``parse()`` throws at the
/// end when anything was recorded. Maps, lists, scalars, `${VAR}` substitution and the
/// diagnostics themselves are ``YAMLNodeReader``'s, shared with ``RuleFileParser``.
struct ConfigurationParser {
    /// The configuration file as an absolute path (may be empty for text without a file).
    let absoluteFile: String
    let baseDirectory: String
    let environment: [String: String]
    let yaml: String
    var reader: YAMLNodeReader

    /// Every problem found, in the order found.
    package var diagnostics: [ConfigurationDiagnostic] { reader.diagnostics }

    init(
        yaml: String, displayFile: String, absoluteFile: String, baseDirectory: String, environment: [String: String],
        secrets: ChatBridgeConfiguration.SecretUse = .required
    ) {
        self.yaml = yaml
        self.reader = YAMLNodeReader(displayFile: displayFile, substituting: environment)
        self.reader.secretsMayBeUnset = secrets == .mayBeUnset
        self.absoluteFile = absoluteFile
        self.baseDirectory = baseDirectory
        self.environment = environment
    }

    // MARK: - The file

    static let topLevelKeys = [
        "sources", "store", "rules", "baseline", "retention", "sinks", "delivery", "http", "instance", "lease",
    ]
    static let sourceKeys = [
        "name", "url", "api_key", "interval", "page_size", "account_type", "account_ids", "unread", "timeout",
        "max_requests_per_second",
    ]
    static let webhookKeys = ["type", "url", "format", "template", "secret", "secrets", "headers", "timeout"]
    static let execKeys = ["type", "command", "timeout", "env"]
    static let httpSinkKeys = ["type", "method", "url", "headers", "content_type", "body", "secret", "secrets", "timeout"]
    static let standardOutputKeys = ["type"]
    static let deliveryKeys = ["max_attempts", "initial_backoff", "max_backoff", "concurrency"]
    static let httpKeys = ["listen"]

    /// Parses the whole file, or throws every problem found in it.
    mutating func parse() throws(ConfigurationError) -> ChatBridgeConfiguration {
        let root: Node
        switch reader.compose(yaml, secondDocumentMessage: "the file holds more than one YAML document (a second `---`): keep one") {
        case .root(let node):
            root = node
        case .empty:
            reader.report("the configuration is empty: at least `sources:` with one source (name, url, api_key) is required", line: 1, column: 1)
            throw finishedError()
        case .unreadable:
            throw finishedError()
        }
        guard let top = reader.mapping(root, path: "the configuration", allowedKeys: nil) else {
            throw finishedError()
        }
        reader.rejectUnknownKeys(top, allowedKeys: Self.topLevelKeys, in: nil)

        let sources = readSources(top)
        let scale = readScaleSettings(top)
        let store = scale.postgres?.description ?? ChatBridgeConfiguration.resolve(
            path: scale.storeText ?? "state/chatbridge.sqlite", against: baseDirectory, home: environment["HOME"])
        let rules = readPath(top, key: "rules", default: "rules/")
        let baseline = top["baseline"].flatMap { readEnum($0.value, path: "baseline", as: BaselineMode.self) } ?? .silent
        let retention = top["retention"].flatMap { readDuration($0.value, path: "retention") }
            ?? .seconds(30 * 86_400)
        let sinks = readSinks(top)
        let delivery = readDelivery(top)
        let http = readHTTP(top)

        guard diagnostics.isEmpty else { throw finishedError() }
        var configuration = ChatBridgeConfiguration(
            file: absoluteFile,
            baseDirectory: baseDirectory,
            sources: sources,
            storePath: store,
            rulesPath: rules,
            rulesPathIsExplicit: top["rules"].map { !reader.isNull($0.value) } ?? false,
            baseline: baseline,
            retention: retention,
            sinks: sinks,
            delivery: delivery,
            http: http
        )
        configuration.unresolvedSecrets = reader.unresolvedSecrets
        configuration.substitutedSecrets = reader.substitutedSecrets
        configuration.postgresStore = scale.postgres
        configuration.instance = scale.instance
        configuration.lease = scale.lease
        return configuration
    }

    private func finishedError() -> ConfigurationError {
        // Stable order: by position, then in the order found (the sort is stable).
        let sorted = diagnostics.enumerated().sorted { lhs, rhs in
            (lhs.element.line, lhs.element.column, lhs.offset) < (rhs.element.line, rhs.element.column, rhs.offset)
        }.map(\.element)
        return ConfigurationError(diagnostics: sorted)
    }

    // MARK: - Sections

    private mutating func readSources(_ top: YAMLMapping) -> [SourceConfiguration] {
        guard let entry = top["sources"], !reader.isNull(entry.value) else {
            reader.report("`sources` is required: list at least one source with name, url and api_key", at: top.mark)
            return []
        }
        guard let items = reader.sequence(entry.value, path: "sources") else { return [] }
        if items.isEmpty {
            reader.report("`sources` is empty: list at least one source with name, url and api_key", at: entry.value.mark)
        }
        var sources: [SourceConfiguration] = []
        var firstLineOfName: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "sources[\(index)]"
            guard let fields = reader.mapping(item, path: path, allowedKeys: Self.sourceKeys) else { continue }

            let name = readRequiredString(fields, key: "name", path: path)
            if let name, let nameNode = fields["name"]?.value {
                if !Self.isSourceName(name) {
                    reader.report("\(path).name '\(name)' may only hold a-z, 0-9, _ and -", at: nameNode.mark)
                } else if let firstLine = firstLineOfName[name] {
                    reader.report("\(path).name '\(name)' is already the name of the source at line \(firstLine): names must be unique", at: nameNode.mark)
                } else {
                    firstLineOfName[name] = nameNode.mark?.line ?? 0
                }
            }
            let url = readRequiredURL(fields, key: "url", path: path)?.url
            var apiKey = readRequiredString(fields, key: "api_key", path: path, secret: true)
            // Sent as a header, which cannot carry one; a `.env` file with Windows line endings
            // ends every value with a carriage return. (Never echoed: the key is a secret.)
            if let key = apiKey, key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                reader.report(
                    "\(path).api_key holds a control character (a carriage return from a file with Windows line endings?): an HTTP header cannot carry it",
                    at: fields["api_key"]?.value.mark)
                apiKey = nil
            }
            let interval = fields["interval"].flatMap { readDuration($0.value, path: "\(path).interval") }
            let pageSize = fields["page_size"].flatMap { readInteger($0.value, path: "\(path).page_size", in: 1...250) }
            let accountType = fields["account_type"].flatMap {
                readEnum($0.value, path: "\(path).account_type", as: SourceConfiguration.AccountType.self)
            }
            let accountIDs = fields["account_ids"].flatMap { readStringList($0.value, path: "\(path).account_ids") }
            let unread = fields["unread"].flatMap { readBool($0.value, path: "\(path).unread") }
            let timeout = fields["timeout"].flatMap { readDuration($0.value, path: "\(path).timeout") }
            let rate = fields["max_requests_per_second"].flatMap {
                readNonNegativeNumber($0.value, path: "\(path).max_requests_per_second")
            }
            guard let name, let url, let apiKey else { continue }
            sources.append(SourceConfiguration(
                name: name,
                url: url,
                apiKey: Secret(apiKey),
                interval: interval ?? .seconds(30),
                pageSize: pageSize ?? 250,
                accountType: accountType,
                accountIDs: accountIDs ?? [],
                unread: unread,
                timeout: timeout ?? .seconds(30),
                maxRequestsPerSecond: rate ?? 5
            ))
        }
        return sources
    }

    private mutating func readSinks(_ top: YAMLMapping) -> [String: SinkConfiguration] {
        var sinks: [String: SinkConfiguration] = [:]
        guard let entry = top["sinks"], !reader.isNull(entry.value) else { return sinks }
        guard let named = reader.mapping(entry.value, path: "sinks", allowedKeys: nil) else { return sinks }
        for (name, field) in named.orderedEntries {
            let path = "sinks.\(name)"
            guard Self.isSinkName(name) else {
                reader.report("sink name '\(name)' may only hold letters, digits, _, . and -", at: field.keyMark)
                continue
            }
            if let sink = readSink(named: name, field.value, path: path, keyMark: field.keyMark) {
                sinks[name] = sink
            }
        }
        return sinks
    }

    private mutating func readSink(named name: String, _ node: Node, path: String, keyMark: Mark?) -> SinkConfiguration? {
        let isStandardOutputName = name == SinkConfiguration.standardOutputName
        if reader.isNull(node) {
            if isStandardOutputName { return .standardOutput }
            reader.report("\(path) needs a `type`: stdout, webhook, exec or http", at: keyMark)
            return nil
        }
        // First learn the type, to know which keys belong; then check the keys.
        guard let fields = reader.mapping(node, path: path, allowedKeys: nil) else { return nil }
        let typeName: String?
        if let typeField = fields["type"] {
            typeName = readEnumText(typeField.value, path: "\(path).type", choices: ["stdout", "webhook", "exec", "http"])
        } else if isStandardOutputName {
            typeName = "stdout"
        } else {
            // `typ: webhook`: name the misspelt key, not only the missing one.
            let misspelt = fields.orderedEntries.map(\.key).first { YAMLNodeReader.closestKey(to: $0, among: ["type"]) != nil }
            let hint = misspelt.map { " (did you mean 'type' for '\($0)'?)" } ?? ""
            reader.report("\(path) needs a `type`: stdout, webhook, exec or http\(hint)", at: fields.mark)
            typeName = nil
        }
        guard let typeName else { return nil }
        if isStandardOutputName && typeName != "stdout" {
            reader.report("the sink named `stdout` is the standard output; give a \(typeName) sink another name", at: fields["type"]?.value.mark ?? fields.mark)
            return nil
        }
        switch typeName {
        case "webhook":
            reader.rejectUnknownKeys(fields, allowedKeys: Self.webhookKeys, in: "a webhook sink")
            let url = readRequiredURL(fields, key: "url", path: path)?.text
            let format = fields["format"].flatMap {
                readEnum($0.value, path: "\(path).format", as: WebhookSinkConfiguration.Format.self)
            }
            let template = fields["template"].flatMap { reader.readString($0.value, path: "\(path).template") }
            let secrets = readSigningSecrets(fields, path: path)
            let headers = fields["headers"].flatMap { readHeaders($0.value, path: "\(path).headers") }
            let timeout = fields["timeout"].flatMap { readDuration($0.value, path: "\(path).timeout") }
            guard let url else { return nil }
            return SinkConfiguration(name: name, kind: .webhook(WebhookSinkConfiguration(
                url: Secret(url),
                format: format ?? .json,
                template: template,
                secrets: secrets.map(Secret.init),
                headers: headers ?? [:],
                timeout: timeout ?? .seconds(10)
            )))
        case "exec":
            reader.rejectUnknownKeys(fields, allowedKeys: Self.execKeys, in: "an exec sink")
            let command: ExecSinkConfiguration.Command?
            if let field = fields["command"], !reader.isNull(field.value) {
                command = readCommand(field.value, path: "\(path).command")
            } else {
                reader.report("\(path).command is required: a list [program, arg, ...] (no shell) or a string run by /bin/sh -c", at: fields["command"]?.keyMark ?? fields.mark)
                command = nil
            }
            let timeout = fields["timeout"].flatMap { readDuration($0.value, path: "\(path).timeout") }
            let environment = fields["env"].flatMap { readExecEnvironment($0.value, path: "\(path).env") }
            guard let command else { return nil }
            return SinkConfiguration(name: name, kind: .exec(ExecSinkConfiguration(
                command: command, timeout: timeout ?? .seconds(10), passedVariables: environment?.passed ?? [],
                variables: environment?.values ?? [:])))
        case "http":
            return readHTTPSink(named: name, fields, path: path)
        default:
            reader.rejectUnknownKeys(fields, allowedKeys: Self.standardOutputKeys, in: "a stdout sink (it has no options)")
            return SinkConfiguration(name: name, kind: .standardOutput)
        }
    }

    /// A `type: http` sink. The templates are only read here; whether they parse and
    /// whether a JSON body renders to JSON is checked by `loadChecked` (Formats).
    private mutating func readHTTPSink(named name: String, _ fields: YAMLMapping, path: String) -> SinkConfiguration? {
        reader.rejectUnknownKeys(fields, allowedKeys: Self.httpSinkKeys, in: "an http sink")
        func position(_ node: Node?) -> ConfigPosition {
            let mark = node?.mark ?? fields.mark
            return ConfigPosition(file: reader.displayFile, line: mark?.line ?? 1, column: mark?.column ?? 1)
        }
        var positions: [String: ConfigPosition] = [:]
        let method = fields["method"].flatMap {
            readEnumText($0.value, path: "\(path).method", choices: HTTPSinkConfiguration.methods)
        }
        let url = readRequiredString(fields, key: "url", path: path, secret: true)
        if let url, let field = fields["url"] {
            positions["url"] = position(field.value)
            if !Self.hasFixedHTTPOrigin(url) {
                // Never echo the text: the URL often holds a token.
                reader.report("\(path).url must start with http:// or https:// and a host written out (no {{...}} before the path)", at: field.value.mark)
            }
        }
        var headers = fields["headers"].flatMap { readHeaders($0.value, path: "\(path).headers") } ?? [:]
        if let headerFields = fields["headers"].flatMap({ $0.value.mapping }) {
            for (key, value) in headerFields {
                if let name = key.scalar?.string { positions["headers.\(name)"] = position(value) }
            }
        }
        for name in headers.keys where name.lowercased() == "content-type" {
            reader.report("\(path).headers: give the body's type with `content_type`, not a Content-Type header", at: fields["headers"]?.value.mark)
            headers[name] = nil
        }
        let contentType = fields["content_type"].flatMap { reader.readNonEmptyString($0.value, path: "\(path).content_type", expected: "a media type such as application/json") }
        if let contentType, contentType.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            reader.report("\(path).content_type must be one line", at: fields["content_type"]?.value.mark)
        }
        // The body may hold tokens (`${PUSHOVER_TOKEN}`): a secret, as the URL and headers.
        let body = fields["body"].flatMap { reader.readString($0.value, path: "\(path).body", secret: true) }
        if let field = fields["body"] { positions["body"] = position(field.value) }
        let secrets = readSigningSecrets(fields, path: path)
        let timeout = fields["timeout"].flatMap { readDuration($0.value, path: "\(path).timeout") }
        guard let url else { return nil }
        return SinkConfiguration(name: name, kind: .http(HTTPSinkConfiguration(
            method: method ?? "POST",
            url: Secret(url),
            headers: headers,
            contentType: contentType ?? "application/json",
            body: body,
            secrets: secrets.map(Secret.init),
            timeout: timeout ?? .seconds(10),
            positions: positions)))
    }

    /// `http(s)://HOST[:PORT]` written out before any template: the place a request goes
    /// is the configuration's, never a chat's.
    static func hasFixedHTTPOrigin(_ text: String) -> Bool {
        let lowered = text.lowercased()
        guard let schemeEnd = ["https://", "http://"].first(where: { lowered.hasPrefix($0) }) else { return false }
        let rest = text.dropFirst(schemeEnd.count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hasSpaceOrControl = text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0 == " " }
        return !authority.isEmpty && !authority.contains("{") && !authority.contains("}") && !hasSpaceOrControl
            && URL(string: schemeEnd + authority) != nil
    }

    private mutating func readDelivery(_ top: YAMLMapping) -> DeliveryConfiguration {
        var delivery = DeliveryConfiguration()
        guard let entry = top["delivery"], !reader.isNull(entry.value),
              let fields = reader.mapping(entry.value, path: "delivery", allowedKeys: Self.deliveryKeys)
        else { return delivery }
        if let value = fields["max_attempts"].flatMap({ readInteger($0.value, path: "delivery.max_attempts", in: 1...1_000_000) }) {
            delivery.maxAttempts = value
        }
        if let value = fields["initial_backoff"].flatMap({ readDuration($0.value, path: "delivery.initial_backoff") }) {
            delivery.initialBackoff = value
        }
        if let value = fields["max_backoff"].flatMap({ readDuration($0.value, path: "delivery.max_backoff") }) {
            delivery.maxBackoff = value
        }
        if let value = fields["concurrency"].flatMap({ readInteger($0.value, path: "delivery.concurrency", in: 1...10_000) }) {
            delivery.concurrency = value
        }
        if delivery.maxBackoff < delivery.initialBackoff {
            let mark = fields["max_backoff"]?.value.mark ?? fields["initial_backoff"]?.value.mark ?? fields.mark
            reader.report("delivery.max_backoff (\(ConfigDuration.format(delivery.maxBackoff))) is shorter than delivery.initial_backoff (\(ConfigDuration.format(delivery.initialBackoff)))", at: mark)
        }
        return delivery
    }

    private mutating func readHTTP(_ top: YAMLMapping) -> HTTPListenConfiguration? {
        guard let entry = top["http"], !reader.isNull(entry.value),
              let fields = reader.mapping(entry.value, path: "http", allowedKeys: Self.httpKeys),
              let listen = fields["listen"], let text = reader.readString(listen.value, path: "http.listen")
        else { return nil }
        switch Self.parseListenAddress(text) {
        case .success(let address):
            return address
        case .failure(let problem):
            reader.report("http.listen \(problem.message)", at: listen.value.mark)
            return nil
        }
    }

    // MARK: - Typed readers

    /// A path relative to the base directory, made absolute.
    private mutating func readPath(_ top: YAMLMapping, key: String, default defaultPath: String) -> String {
        let written = top[key].flatMap { reader.readString($0.value, path: key) } ?? defaultPath
        return ChatBridgeConfiguration.resolve(path: written, against: baseDirectory, home: environment["HOME"])
    }

    // The string readers never echo what was written: api_key, url, secret and header
    // values pass through them. Readers of numbers, booleans, durations and choices may
    // quote the text, which helps and is never a secret.

    private mutating func readRequiredString(_ fields: YAMLMapping, key: String, path: String, secret: Bool = false) -> String? {
        guard let field = fields[key] else {
            reader.report("\(path).\(key) is required", at: fields.mark)
            return nil
        }
        return reader.readNonEmptyString(field.value, path: "\(path).\(key)", expected: "a string", secret: secret)
    }

    /// The URL and the text it was read from (kept as written for secrets).
    /// A URL is a secret: a webhook URL is a credential, and a source URL may hold one.
    private mutating func readRequiredURL(_ fields: YAMLMapping, key: String, path: String) -> (url: URL, text: String)? {
        guard let text = readRequiredString(fields, key: key, path: path, secret: true) else { return nil }
        // Never echo the text: a webhook URL is a credential, and a source URL may hold one.
        // URL(string:) percent-encodes spaces nowadays; a space in a base URL is a mistake.
        let hasSpaceOrControl = text.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }
        guard !hasSpaceOrControl, let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            reader.report("\(path).\(key) is not a valid http(s) URL", at: fields[key]?.value.mark)
            return nil
        }
        // A port past 65535 parses, and would stop the process where it is connected to.
        if let port = url.port, !(1...65535).contains(port) {
            reader.report("\(path).\(key) has port \(port): a port is from 1 to 65535", at: fields[key]?.value.mark)
            return nil
        }
        return (url, text)
    }

    private mutating func readInteger(_ node: Node, path: String, in range: ClosedRange<Int>) -> Int? {
        guard case .value(let text) = reader.scalarText(node, path: path, expected: "a whole number") else { return nil }
        guard let value = Int(text) else {
            reader.report("\(path) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'", at: node.mark)
            return nil
        }
        guard range.contains(value) else {
            reader.report("\(path) must be from \(range.lowerBound) to \(range.upperBound), not \(value)", at: node.mark)
            return nil
        }
        return value
    }

    private mutating func readNonNegativeNumber(_ node: Node, path: String) -> Double? {
        guard case .value(let text) = reader.scalarText(node, path: path, expected: "a number") else { return nil }
        // Only plain decimals: Double(_:) would also take "inf", "nan" and hexadecimal.
        let isDecimal = !text.isEmpty && text.filter { $0 == "." }.count <= 1
            && text.allSatisfy { $0 == "." || ($0.isASCII && $0.isNumber) } && text != "."
        guard isDecimal, let value = Double(text), value.isFinite else {
            reader.report("\(path) must be a number of 0 or more (0 = no limit), not '\(text)'", at: node.mark)
            return nil
        }
        return value
    }

    private mutating func readBool(_ node: Node, path: String) -> Bool? {
        guard case .value(let text) = reader.scalarText(node, path: path, expected: "true or false") else { return nil }
        return reader.boolean(text, path: path, at: node.mark, ignoringCase: true)
    }

    private mutating func readDuration(_ node: Node, path: String) -> Duration? {
        guard case .value(let text) = reader.scalarText(node, path: path, expected: "a duration such as 30s") else { return nil }
        return reader.positiveDuration(text, path: path, at: node.mark)
    }

    private mutating func readEnum<Value: RawRepresentable & CaseIterable>(
        _ node: Node, path: String, as type: Value.Type
    ) -> Value? where Value.RawValue == String {
        let choices = Value.allCases.map(\.rawValue)
        return readEnumText(node, path: path, choices: choices).flatMap(Value.init(rawValue:))
    }

    private mutating func readEnumText(_ node: Node, path: String, choices: [String]) -> String? {
        guard case .value(let text) = reader.scalarText(node, path: path, expected: "one of \(choices.joined(separator: ", "))") else {
            return nil
        }
        guard choices.contains(text) else {
            let hint = choices.first { $0.lowercased() == text.lowercased() }.map { " (did you mean \($0)?)" } ?? ""
            reader.report("\(path) must be one of \(choices.joined(separator: ", ")), not '\(text)'\(hint)", at: node.mark)
            return nil
        }
        return text
    }

    /// A list of non-empty strings; a single string counts as a list of one.
    private mutating func readStringList(_ node: Node, path: String) -> [String]? {
        if node.sequence == nil {
            switch reader.scalarText(node, path: path, expected: "a list of strings") {
            case .value(let text): return [text]
            case .null, .invalid: return nil
            }
        }
        guard let items = reader.sequence(node, path: path) else { return nil }
        var values: [String] = []
        var failed = false
        for (index, item) in items.enumerated() {
            switch reader.scalarText(item, path: "\(path)[\(index)]", expected: "a string") {
            case .value(let text):
                values.append(text)
            case .null:
                reader.report("\(path)[\(index)] must not be empty", at: item.mark ?? node.mark)
                failed = true
            case .invalid:
                failed = true
            }
        }
        return failed ? nil : values
    }

    private mutating func readCommand(_ node: Node, path: String) -> ExecSinkConfiguration.Command? {
        if node.sequence == nil {
            guard case .value(let text) = reader.scalarText(node, path: path, expected: "a list [program, arg, ...] or a string") else {
                return nil
            }
            return .shell(text)
        }
        guard let items = reader.sequence(node, path: path) else { return nil }
        guard !items.isEmpty else {
            reader.report("\(path) must name a program: [program, arg, ...]", at: node.mark)
            return nil
        }
        var arguments: [String] = []
        var failed = false
        for (index, item) in items.enumerated() {
            switch reader.scalarText(item, path: "\(path)[\(index)]", expected: "a string") {
            case .value(let text):
                arguments.append(text)
            case .null where index > 0:
                arguments.append("")
            case .null:
                reader.report("\(path)[0] must name a program", at: item.mark ?? node.mark)
                failed = true
            case .invalid:
                failed = true
            }
        }
        return failed ? nil : .arguments(arguments)
    }

    /// A webhook's signing secrets: `secret: S` or `secrets: [NEW, OLD]`, not both. A
    /// `whsec_` secret must be base64 after its prefix (a typo would otherwise sign with
    /// the wrong key and every receiver would reject every request).
    private mutating func readSigningSecrets(_ fields: YAMLMapping, path: String) -> [String] {
        if let one = fields["secret"], let many = fields["secrets"] {
            reader.report("\(path): give `secret` or `secrets`, not both", at: many.keyMark ?? one.keyMark)
            return []
        }
        var found: [(text: String, mark: Mark?)] = []
        if let one = fields["secret"], let text = reader.readString(one.value, path: "\(path).secret", secret: true) {
            found = [(text, one.value.mark)]
        } else if let many = fields["secrets"], let items = reader.sequence(many.value, path: "\(path).secrets") {
            if items.isEmpty { reader.report("\(path).secrets must list at least one secret", at: many.value.mark) }
            for (index, item) in items.enumerated() {
                if let text = reader.readString(item, path: "\(path).secrets[\(index)]", secret: true) { found.append((text, item.mark)) }
            }
        }
        var secrets: [String] = []
        for (text, mark) in found {
            if text.isEmpty {
                reader.report("\(path): a signing secret must not be empty", at: mark)
            } else if text.hasPrefix("whsec_"), Self.standardWebhooksKey(text) == nil {
                // Never echo the secret itself.
                reader.report("\(path): a whsec_ secret must be base64 after `whsec_` (this one is not)", at: mark)
            } else {
                secrets.append(text)
            }
        }
        return secrets
    }

    /// The key bytes of a `whsec_` secret, or `nil` when its rest is not non-empty base64.
    package static func standardWebhooksKey(_ secret: String) -> Data? {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst("whsec_".count))),
              !key.isEmpty
        else { return nil }
        return key
    }

    /// An exec sink's `env:`: a list of variable names to pass on, or a map of values.
    private mutating func readExecEnvironment(_ node: Node, path: String) -> (passed: [String], values: [String: Secret])? {
        if reader.isNull(node) { return nil }
        if node.sequence != nil {
            guard let names = readStringList(node, path: path) else { return nil }
            var valid: [String] = []
            for (index, name) in names.enumerated() {
                if Self.isEnvironmentName(name) {
                    valid.append(name)
                } else {
                    reader.report("\(path)[\(index)]: '\(name)' is not a variable name (letters, digits, _)", at: node.sequence?[index].mark ?? node.mark)
                }
            }
            return (valid, [:])
        }
        guard let fields = reader.mapping(node, path: path, allowedKeys: nil) else {
            return nil
        }
        var values: [String: Secret] = [:]
        for (name, field) in fields.orderedEntries {
            guard Self.isEnvironmentName(name) else {
                reader.report("\(path): '\(name)' is not a variable name (letters, digits, _)", at: field.keyMark)
                continue
            }
            switch reader.scalarText(field.value, path: "\(path).\(name)", expected: "a string", secret: true) {
            case .value(let text): values[name] = Secret(text)
            case .null: values[name] = Secret("")
            case .invalid: continue
            }
        }
        return ([], values)
    }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "0") && !(UInt8(ascii: "1")...UInt8(ascii: "9")).contains(first)
        else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    /// Header names that chatbridge sets itself; letting a user override them would break
    /// signatures or the request framing.
    static let reservedHeaderNames: Set<String> = [
        "content-length", "host", "transfer-encoding", "connection", "webhook-id", "webhook-timestamp", "webhook-signature",
    ]

    private mutating func readHeaders(_ node: Node, path: String) -> [String: Secret]? {
        if reader.isNull(node) { return nil }
        guard let fields = reader.mapping(node, path: path, allowedKeys: nil) else { return nil }
        var headers: [String: Secret] = [:]
        var seen: [String: Int] = [:]
        for (name, field) in fields.orderedEntries {
            let headerPath = "\(path).\(name)"
            guard Self.isHeaderName(name) else {
                reader.report("\(path): '\(name)' is not a valid header name", at: field.keyMark)
                continue
            }
            if Self.reservedHeaderNames.contains(name.lowercased()) {
                reader.report("\(path): \(name) is set by chatbridge and cannot be configured", at: field.keyMark)
                continue
            }
            if let firstLine = seen[name.lowercased()] {
                reader.report("\(path): \(name) is already set at line \(firstLine) (header names ignore case)", at: field.keyMark)
                continue
            }
            seen[name.lowercased()] = field.keyMark?.line ?? 0
            // Header values are often tokens: never echoed.
            switch reader.scalarText(field.value, path: headerPath, expected: "a string", secret: true) {
            case .value(let value):
                if value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
                    reader.report("\(headerPath) must not contain line breaks", at: field.value.mark)
                } else {
                    headers[name] = Secret(value)
                }
            case .null:
                headers[name] = Secret("")
            case .invalid:
                break
            }
        }
        return headers
    }

    // MARK: - Pure checks

    /// `[a-z0-9_-]+`
    static func isSourceName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }
    }

    /// `[A-Za-z0-9_.-]+`
    static func isSinkName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" || $0 == "."
        }
    }

    /// An HTTP token (RFC 9110).
    static func isHeaderName(_ name: String) -> Bool {
        let punctuation: Set<Unicode.Scalar> = ["!", "#", "$", "%", "&", "'", "*", "+", "-", ".", "^", "_", "`", "|", "~"]
        return !name.isEmpty && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || punctuation.contains($0)
        }
    }

    struct ListenAddressProblem: Error { var message: String }

    /// `HOST:PORT`, `[IPv6]:PORT`.
    static func parseListenAddress(_ text: String) -> Result<HTTPListenConfiguration, ListenAddressProblem> {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(.init(message: "must be HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464, not '\(text)'"))
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return .failure(.init(message: "must be HOST:PORT, e.g. 127.0.0.1:9464, not '\(text)'"))
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") {
                return .failure(.init(message: "has an IPv6 address: write it in brackets, e.g. [::1]:9464"))
            }
        }
        guard !host.isEmpty else {
            return .failure(.init(message: "needs a host, e.g. 127.0.0.1:9464 (or 0.0.0.0:9464 for every interface)"))
        }
        guard let number = Int(port), (0...65535).contains(number), port.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return .failure(.init(message: "needs a port from 0 to 65535 after the colon, e.g. 127.0.0.1:9464"))
        }
        return .success(HTTPListenConfiguration(host: String(host), port: number))
    }
}
