import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Rules

// The JSON Schemas of schema/ against the parsers: every key a parser accepts is in the
// schema, and the schema has no key the parsers refuse; the repository's files are the
// text `chatbridge init` writes.

@Suite("JSON Schemas for editors")
struct ConfigurationSchemaTests {
    static let repository: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    static func keys(_ schema: JSONValue, _ path: [String]) throws -> Set<String> {
        var node = schema
        for step in path { node = try #require(node[step], "no \(path.joined(separator: "."))") }
        return Set(try #require(node["properties"]?.objectValue).map(\.key))
    }

    @Test("schema/*.json are the schemas init writes")
    func filesMatch() throws {
        let config = try String(contentsOf: Self.repository.appendingPathComponent(ConfigurationSchema.configRelativePath), encoding: .utf8)
        let rule = try String(contentsOf: Self.repository.appendingPathComponent(ConfigurationSchema.ruleRelativePath), encoding: .utf8)
        #expect(config == ConfigurationSchema.configJSON)
        #expect(rule == ConfigurationSchema.ruleJSON)
    }

    @Test("the config schema has exactly the keys the config parser accepts, each with a description")
    func configKeys() throws {
        let schema = try JSONValue.parse(ConfigurationSchema.configJSON)
        #expect(try Self.keys(schema, []) == Set(ConfigurationParser.topLevelKeys))
        #expect(try Self.keys(schema, ["$defs", "source"]) == Set(ConfigurationParser.sourceKeys))
        #expect(try Self.keys(schema, ["$defs", "stdoutSink"]) == Set(ConfigurationParser.standardOutputKeys))
        #expect(try Self.keys(schema, ["$defs", "webhookSink"]) == Set(ConfigurationParser.webhookKeys))
        #expect(try Self.keys(schema, ["$defs", "execSink"]) == Set(ConfigurationParser.execKeys))
        #expect(try Self.keys(schema, ["$defs", "httpSink"]) == Set(ConfigurationParser.httpSinkKeys))
        #expect(try Self.keys(schema, ["$defs", "delivery"]) == Set(ConfigurationParser.deliveryKeys))
        #expect(try Self.keys(schema, ["$defs", "http"]) == Set(ConfigurationParser.httpKeys))
        // Every sink type the parser knows is one of the schema's sinks.
        let sinkTypes = try #require(schema["$defs"]?["sink"]?["oneOf"]?.arrayValue).count
        #expect(sinkTypes == 4)
        for (path, keys) in [
            ([String](), ConfigurationParser.topLevelKeys), (["$defs", "source"], ConfigurationParser.sourceKeys),
            (["$defs", "httpSink"], ConfigurationParser.httpSinkKeys), (["$defs", "webhookSink"], ConfigurationParser.webhookKeys),
            (["$defs", "execSink"], ConfigurationParser.execKeys), (["$defs", "delivery"], ConfigurationParser.deliveryKeys),
        ] {
            var node = schema
            for step in path { node = node[step] ?? .null }
            for key in keys {
                let property = node["properties"]?[key]
                let described = property?["description"]?.stringValue ?? ""
                let referenced = property?["$ref"] != nil
                #expect(!described.isEmpty || referenced, "\(path + [key]) has no description")
            }
        }
    }

    @Test("defaults in the schema are the parser's defaults")
    func defaults() throws {
        let schema = try JSONValue.parse(ConfigurationSchema.configJSON)
        let parsed = try ChatBridgeConfiguration.parse(
            yaml: "sources: [{name: main, url: 'https://a.example', api_key: k}]\nsinks: {h: {type: http, url: 'https://b.example'}}\n",
            file: "/tmp/schema-test/config/chatbridge.yaml", environment: [:])
        let source = try #require(parsed.sources.first)
        func duration(_ path: [String]) throws -> Duration {
            var node = schema
            for step in path { node = try #require(node[step]) }
            return try ConfigDuration.parse(try #require(node["default"]?.stringValue))
        }
        #expect(try duration(["$defs", "source", "properties", "interval"]) == source.interval)
        #expect(try duration(["$defs", "source", "properties", "timeout"]) == source.timeout)
        #expect(schema["$defs"]?["source"]?["properties"]?["page_size"]?["default"] == .int(Int64(source.pageSize)))
        #expect(try duration(["properties", "retention"]) == parsed.retention)
        #expect(try duration(["$defs", "delivery", "properties", "max_backoff"]) == parsed.delivery.maxBackoff)
        #expect(schema["$defs"]?["delivery"]?["properties"]?["max_attempts"]?["default"] == .int(Int64(parsed.delivery.maxAttempts)))
        guard case .http(let http)? = parsed.sinks["h"]?.kind else { Issue.record("no http sink"); return }
        #expect(schema["$defs"]?["httpSink"]?["properties"]?["method"]?["default"]?.stringValue == http.method)
        #expect(schema["$defs"]?["httpSink"]?["properties"]?["content_type"]?["default"]?.stringValue == http.contentType)
        #expect(try duration(["$defs", "httpSink", "properties", "timeout"]) == http.timeout)
    }

    @Test("the rule schema has exactly the keys the rule parser accepts, and every type and kind")
    func ruleKeys() throws {
        let schema = try JSONValue.parse(ConfigurationSchema.ruleJSON)
        #expect(try Self.keys(schema, ["$defs", "rule"]) == Set(RuleFileParser.ruleKeys))
        #expect(try Self.keys(schema, ["$defs", "rule", "properties", "quiet_hours"]) == Set(RuleFileParser.quietHoursKeys))
        let triggers = Set(try #require(schema["$defs"]?["trigger"]?["enum"]?.arrayValue).compactMap(\.stringValue))
        let known = Set(Rule.triggerNames)
        #expect(triggers == known)
    }
}
