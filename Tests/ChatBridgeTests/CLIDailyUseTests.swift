import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Testing
import UnipileSimulator
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Rules
@testable import Runtime

// Issue 11 end to end: the built binary as a new user runs it.

extension EndToEndTests {
    @Suite("CLI: daily use (issue 11)", .timeLimit(.minutes(3)))
    struct CLIDailyUseTests {
        let apiKey = "sk-e2e-daily-\(UUID().uuidString)"

        /// A workspace with one rule that matches added chats and a store with a baseline
        /// that emitted `chats` events.
        func emittingWorkspace(_ simulator: RunningSimulator, rules: [String: String]? = nil) async throws -> CLIWorkspace {
            let workspace = try CLIWorkspace(
                config: CLIWorkspace.sourceYAML(url: simulator.baseURL) + "baseline: emit\n",
                rules: rules ?? ["every-added.yaml": "name: every-added\non: [chat.added]\n"],
                environment: ["E2E_API_KEY": apiKey])
            let run = try await workspace.run(["run", "--once"])
            try #require(run.exitStatus == 0, "\(run)")
            return workspace
        }

        @Test func rulesTestReadsPrettyJSONAndJSONLines() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 3, seed: 21)) { simulator in
                let workspace = try await emittingWorkspace(simulator)
                let events = try await workspace.storedEvents()
                try #require(events.count == 3)

                let pretty = try await workspace.run(
                    ["rules", "test", "--event", "-"], input: .bytes(Array(events[0].prettyStringForTest.utf8)))
                #expect(pretty.exitStatus == 0, "\(pretty)")
                let prettyLines = try pretty.stdoutLines.map { try JSONValue.parse($0) }
                #expect(prettyLines.count == 1 && prettyLines[0]["matched"] == .bool(true), "\(pretty.stdout)")

                let twoLines = events[0].compactString + "\n" + events[1].compactString + "\n"
                let both = try await workspace.run(["rules", "test", "--event", "-"], input: .bytes(Array(twoLines.utf8)))
                #expect(both.exitStatus == 0, "\(both)")
                let results = try both.stdoutLines.map { try JSONValue.parse($0) }
                #expect(results.compactMap { $0["event_id"]?.stringValue } == [events[0], events[1]].compactMap { $0["id"]?.stringValue },
                        "one result per event, in order: \(both.stdout)")
            }
        }

        @Test func evalBindsWhatARuleSeesAndPlainEvalHasNow() async throws {
            let now = try await ChatBridgeCLI.run(["eval", #"now.getHours("Europe/Paris") >= 0"#])
            #expect(now.exitStatus == 0 && now.stdout == "true\n", "\(now)")

            let directory = TemporaryDirectory("chatbridge-e2e-eval")
            let added = RuleTestEvents.added(RuleTestEvents.chat(unread: 2))
            let file = directory.file("event.json")
            try Data(added.json(rule: "some-rule").compactString.utf8).write(to: URL(fileURLWithPath: file))
            for (expression, expected) in [
                ("has(previous.unread_count)", "false"), ("chat.unread_count", "2"), ("type", #""chat.added""#),
                ("muted", "false"), (#""chat.added" in kinds"#, "true"),
            ] {
                let result = try await ChatBridgeCLI.run(["eval", "--event", file, expression])
                #expect(result.exitStatus == 0 && result.stdout == expected + "\n", "\(expression): \(result)")
            }
            let both = try await ChatBridgeCLI.run(["eval", "--event", file, "--vars", file, "1"])
            #expect(both.exitStatus == 2, "\(both)")
        }

        @Test func helpShowsDurationsAsWrittenAndExamplesWhole() async throws {
            let commands: [[String]] = [
                ["run"], ["demo"], ["simulate"], ["init"], ["eval"], ["rules", "test"], ["rules", "check"], ["events"],
                ["deliveries"], ["replay"], ["status"], ["chats"], ["explain"],
            ]
            for command in commands {
                let help = try await ChatBridgeCLI.run(command + ["--help"], environment: ["COLUMNS": "80"])
                #expect(help.exitStatus == 0, "\(command): \(help)")
                #expect(!help.stdout.contains("DurationArgument") && !help.stdout.contains("Duration("), "\(command): \(help.stdout)")
                // Examples are indented; a line wrapped in the middle would continue at column 0.
                let lines = help.stdoutLines
                var inExamples = false
                for line in lines {
                    if line.hasPrefix("USAGE:") || line.hasPrefix("OPTIONS:") || line.hasPrefix("ARGUMENTS:") { break }
                    if line.hasSuffix("Example:") || line.hasSuffix("Examples:") { inExamples = true; continue }
                    if line.isEmpty { inExamples = false }
                    if inExamples, !line.isEmpty {
                        #expect(line.hasPrefix("  "), "\(command): an example wrapped mid-line: \(line)")
                    }
                }
            }
            let run = try await ChatBridgeCLI.run(["run", "--help"], environment: ["COLUMNS": "200"])
            #expect(run.stdout.contains("(default: 30s)"), "\(run.stdout)")
            let demo = try await ChatBridgeCLI.run(["demo", "--help"], environment: ["COLUMNS": "200"])
            #expect(demo.stdout.contains("(default: 2s)"), "\(demo.stdout)")
        }

        /// `chatbridge demo` needs nothing set up: outside the repository too, where there is
        /// no config/chatbridge.yaml or rules/ to run with.
        @Test func theDemoPrintsEventsOutsideTheRepository() async throws {
            let folder = TemporaryDirectory()
            let child = try TestChild.start(
                executable: ChatBridgeCLI.executablePath,
                arguments: ["demo", "--chats", "10", "--change-every", "200ms", "--interval", "200ms"],
                environment: ChatBridgeCLI.environment([:]), currentDirectory: folder.path)
            defer { child.killNow() }
            let line = await child.nextLine(timeout: .seconds(30))
            let event = try line.map { try JSONValue.parse($0) }
            #expect(event?["type"]?.stringValue?.hasPrefix("chat.") == true, "\(line ?? "no line") \(child.standardErrorSoFar)")
            child.send(SIGINT)
            let result = await child.finish(timeout: .seconds(20))
            #expect(result.exitStatus == 0, "\(result)")
        }

        @Test func usageErrorsExitTwo() async throws {
            for arguments in [["events", "--limit", "many"], ["--no-such-option"], ["eval"], ["eval", "1 +"], ["run", "--drain-timeout", "30"]] {
                let result = try await ChatBridgeCLI.run(arguments)
                #expect(result.exitStatus == 2, "\(arguments): \(result)")
                #expect(!result.stderr.isEmpty && result.stdout.isEmpty, "\(arguments): \(result)")
            }
            // An expression that compiles but fails while evaluated is a runtime failure.
            let divided = try await ChatBridgeCLI.run(["eval", "1 / 0"])
            #expect(divided.exitStatus == 1 && divided.stderr == "division by zero\n", "\(divided)")
            let json = try await ChatBridgeCLI.run(["run", "--log-format", "json", "--no-such-option"])
            #expect(json.exitStatus == 2, "\(json)")
            #expect(!json.stderrLines.isEmpty && json.stderrLines.allSatisfy { (try? JSONValue.parse($0))?.objectValue != nil },
                    "with --log-format json, a usage error is JSON too: \(json.stderr)")
        }

        /// A file argument that cannot be read is named with the reason, on one line.
        @Test func anInputFileThatCannotBeReadIsNamedWithItsReason() async throws {
            let folder = TemporaryDirectory()
            let missing = folder.file("missing.json")
            for arguments in [["eval", "--vars", missing, "1"], ["eval", "--event", missing, "1"], ["eval", "--vars", folder.path, "1"]] {
                let result = try await ChatBridgeCLI.run(arguments)
                #expect(result.exitStatus == 2, "\(arguments): \(result)")
                let reason = arguments[2] == folder.path ? "a folder, not a file" : "no such file"
                #expect(result.stderr == "\(arguments[2]): \(reason)\n", "\(arguments): \(result)")
            }
        }

        @Test func jsonLogsAreJSONOnEveryLineWithTypedValues() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 12, seed: 22)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL, pageSize: 5), environment: ["E2E_API_KEY": apiKey])
                let baseline = try await workspace.run(["run", "--once", "--log-format", "json"])
                #expect(baseline.exitStatus == 0, "\(baseline)")
                let complete = try baseline.stderrLines.map { try JSONValue.parse($0) }.first { $0["msg"] == .string("poll complete") }
                #expect(complete?["chats"] == .int(12), "\(baseline.stderr)")
                #expect(complete?["pages"] == .int(3) && complete?["baseline"] == .bool(true), "\(baseline.stderr)")

                await simulator.state.addFault(.error(status: 503, type: "errors/service_unavailable", page: 2))
                let failed = try await workspace.run(["run", "--once", "--log-format", "json"])
                #expect(failed.exitStatus == 1, "\(failed)")
                #expect(!failed.stderrLines.isEmpty)
                for line in failed.stderrLines {
                    #expect((try? JSONValue.parse(line))?.objectValue != nil, "not a JSON line: \(line)")
                }
                let summary = try failed.stderrLines.map { try JSONValue.parse($0) }.last
                #expect(summary?["msg"] == .string("poll failed") && summary?["source"] == .string("main"), "\(failed.stderr)")
            }
        }

        @Test func addressInUseNamesTheAddress() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 1, seed: 23)) { simulator in
                let taken = simulator.port
                let simulate = try await ChatBridgeCLI.run(["simulate", "--port", "\(taken)"], timeout: .seconds(20))
                #expect(simulate.exitStatus == 1, "\(simulate)")
                #expect(simulate.stderr.contains("127.0.0.1:\(taken)") && simulate.stderr.contains("--port"), "\(simulate)")
                #expect(!simulate.stderr.contains("bind(descriptor"), "\(simulate)")

                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL) + "http: {listen: \"127.0.0.1:\(taken)\"}\n",
                    environment: ["E2E_API_KEY": apiKey])
                let run = try await workspace.run(["run"], timeout: .seconds(20))
                #expect(run.exitStatus == 1, "\(run)")
                #expect(run.stderr.contains("127.0.0.1:\(taken)") && run.stderr.contains("http.listen"), "\(run)")
                #expect(!run.stderr.contains("bind(descriptor"), "\(run)")
            }
        }

        @Test func explainSaysWhyEachRuleDidOrDidNotFireAndThrottlesAreLogged() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 6, seed: 24)) { simulator in
                let rules = [
                    "a-added-only.yaml": "name: added-only\non: [chat.added]\n",
                    "b-whatsapp.yaml": "name: whatsapp\nwhen: chat.account_type == \"NO_SUCH_TYPE\" && chat.unread_count > 0\n",
                    "c-every-unread.yaml": "name: every-unread\non: [unread.increased]\nthrottle: 1h\n",
                ]
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL), rules: rules,
                    environment: ["E2E_API_KEY": apiKey])
                try #require(try await workspace.run(["run", "--once"]).exitStatus == 0)
                let chatID = try #require(await simulator.state.chatIDs().first)
                let before = try JSONValue.parse(try #require(await simulator.state.chatJSON(id: chatID)))
                let unread = Int64(before["unread_count"]?.doubleValue ?? 0)
                for step in [Int64(3), 6] {
                    try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": \#(unread + step)}"#)
                    let run = try await workspace.run(["run", "--once", "--log-format", "json"])
                    try #require(run.exitStatus == 0, "\(run)")
                    if step == 6 {
                        let throttled = run.stderrLines.compactMap { try? JSONValue.parse($0) }
                            .first { $0["msg"] == .string("match throttled: nothing sent") }
                        #expect(throttled?["rule"] == .string("every-unread"), "a suppressed match is logged: \(run.stderr)")
                    }
                }
                let events = try await workspace.storedEvents(["--kind", "unread.increased"])
                try #require(events.count == 2, "\(events)")
                let first = try #require(events[0]["id"]?.stringValue)
                let second = try #require(events[1]["id"]?.stringValue)

                let sent = try await workspace.jsonLines(["explain", first, "--format", "json"])
                let sentVerdicts = Dictionary(
                    (sent.first?["rules"]?.arrayValue ?? []).map { ($0["rule"]?.stringValue ?? "", $0) }) { a, _ in a }
                #expect(sentVerdicts["added-only"]?["verdict"] == .string("not_selected"), "\(sent)")
                #expect(sentVerdicts["whatsapp"]?["verdict"] == .string("condition_false"), "\(sent)")
                #expect(sentVerdicts["whatsapp"]?["values"]?["chat.account_type"] != nil, "the values the condition read: \(sent)")
                #expect(sentVerdicts["every-unread"]?["verdict"] == .string("sent"), "\(sent)")
                #expect(sentVerdicts["every-unread"]?["reason"]?.stringValue?.contains("stdout delivered") == true, "\(sent)")

                let held = try await workspace.run(["explain", second])
                #expect(held.exitStatus == 0, "\(held)")
                let line = held.stdoutLines.first { $0.hasPrefix("every-unread: ") } ?? ""
                #expect(line.contains("throttled until") && line.contains(first), "throttled by the first event: \(held.stdout)")
                #expect(held.stdoutLines.contains { $0.hasPrefix("added-only: not selected") }, "\(held.stdout)")

                let missing = try await workspace.run(["explain", "no-such-event"])
                #expect(missing.exitStatus == 1 && missing.stderr.contains("no stored event"), "\(missing)")
            }
        }

        @Test func readOnlyCommandsNeedNoSecretsTheyDoNotUse() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 3, seed: 25)) { simulator in
                let config = CLIWorkspace.sourceYAML(url: simulator.baseURL) + """
                    baseline: emit
                    sinks:
                      hook:
                        type: webhook
                        url: ${E2E_UNSET_HOOK_URL}
                        secret: ${E2E_UNSET_SECRET}
                        headers: {Authorization: "Bearer ${E2E_UNSET_TOKEN}"}

                    """
                let workspace = try CLIWorkspace(
                    config: config, rules: ["all.yaml": "name: all\n"], environment: [:])
                // The service has every variable; a shell has none of them.
                let service = [
                    "E2E_API_KEY": apiKey, "E2E_UNSET_HOOK_URL": "http://127.0.0.1:9/hook", "E2E_UNSET_SECRET": "whsec-x",
                    "E2E_UNSET_TOKEN": "tok-x",
                ]
                try #require(try await workspace.run(["run", "--once"], extraEnvironment: service).exitStatus == 0)
                let eventID = try #require(try await workspace.storedEvents().first?["id"]?.stringValue)
                for command in [
                    ["status"], ["events"], ["chats"], ["deliveries"], ["replay", eventID], ["rules", "check", "--offline"],
                    ["explain", eventID],
                ] {
                    let result = try await workspace.run(command)
                    #expect(result.exitStatus != 2 && !result.stderr.contains("is not set"), "\(command): \(result)")
                }
                let event = try #require(try await workspace.storedEvents().first)
                let tested = try await workspace.run(
                    ["rules", "test", "--event", "-"], input: .bytes(Array(event.compactString.utf8)))
                #expect(tested.exitStatus == 0, "rules test: \(tested)")
                let strict = try await workspace.run(["rules", "check"])
                #expect(strict.exitStatus == 2 && strict.stderr.contains("E2E_UNSET_HOOK_URL"), "\(strict)")
                let run = try await workspace.run(["run", "--once"])
                #expect(run.exitStatus == 2 && run.stderr.contains("E2E_API_KEY"), "\(run)")
            }
        }

        @Test func eventsFollowPrintsOnlyNewEvents() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 4, seed: 26)) { simulator in
                let workspace = try await emittingWorkspace(simulator)
                try await workspace.withStarted(["events", "--follow"]) { follower in
                    #expect(await follower.nextLine(timeout: .seconds(2)) == nil, "no history without --since/--limit")
                    let chatID = try #require(await simulator.state.chatIDs().first)
                    try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": 77}"#)
                    try #require(try await workspace.run(["run", "--once"]).exitStatus == 0)
                    let line = try #require(await follower.nextLine(timeout: .seconds(10)))
                    let event = try JSONValue.parse(line)
                    #expect(event["chat_id"] == .string(chatID) && event["type"] == .string("chat.changed"), "\(line)")
                }
                try await workspace.withStarted(["events", "--follow", "--limit", "1"]) { follower in
                    #expect(await follower.nextLine(timeout: .seconds(10)) != nil, "--limit prints history first")
                }
            }
        }

        @Test func initWritesAnAccountRuleAndRulesCheckWarnsWithoutOne() async throws {
            let directory = TemporaryDirectory("chatbridge-e2e-init-account")
            let target = directory.file("bridge")
            try #require(try await ChatBridgeCLI.run(["init", target]).exitStatus == 0)
            let configPath = target + "/config/chatbridge.yaml"
            let key = ["UNIPILE_API_KEY": "sk-e2e-\(UUID().uuidString)"]
            let check = try await ChatBridgeCLI.run(["rules", "check", "--config", configPath], environment: key)
            #expect(check.exitStatus == 0 && !check.stderr.contains("warning"), "\(check)")
            try FileManager.default.removeItem(atPath: target + "/rules/account-problems.yaml")
            let warned = try await ChatBridgeCLI.run(["rules", "check", "--config", configPath], environment: key)
            #expect(warned.exitStatus == 0, "a warning, not a failure: \(warned)")
            #expect(warned.stderr.contains("warning: no rule can match account.error"), "\(warned)")
        }

        @Test func runLogsItsStartAndARecoveryAndCapsBodiesAndReplayKeepsHistory() async throws {
            let body = String(repeating: "b", count: 1000) + "END-OF-BODY"
            let router = Router()
            router.post("**") { _, _ -> Response in
                Response(status: .notFound, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
            }
            try await withLocalHTTPServer(router, label: "e2e-gone") { port in
                try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 5, seed: 27)) { simulator in
                    let config = CLIWorkspace.sourceYAML(url: simulator.baseURL) + """
                        sinks:
                          gone: {type: webhook, url: "http://127.0.0.1:\(port)/hook"}

                        """
                    let workspace = try CLIWorkspace(
                        config: config,
                        rules: ["unread.yaml": "name: unread\non: [unread.increased]\nsend: [gone]\n"],
                        environment: ["E2E_API_KEY": apiKey])
                    let baseline = try await workspace.run(["run", "--once", "--log-format", "json"])
                    try #require(baseline.exitStatus == 0, "\(baseline)")
                    let start = try #require(baseline.stderrLines.compactMap { try? JSONValue.parse($0) }
                        .first { $0["msg"] == .string("starting") }, "\(baseline.stderr)")
                    #expect(start["version"] == .string(ChatBridgeVersion.current))
                    #expect(start["sources"] == .array([.string("main")]) && start["rules"] == .int(1), "\(start)")
                    #expect(start["sinks"]?.stringArray.contains("gone") == true && start["store"]?.stringValue != nil)

                    // A failed poll, then a complete one: the recovery is logged.
                    await simulator.state.addFault(.error(status: 503, type: "errors/service_unavailable", page: 1))
                    #expect(try await workspace.run(["run", "--once"]).exitStatus == 1)
                    let chatID = try #require(await simulator.state.chatIDs().first)
                    let before = try JSONValue.parse(try #require(await simulator.state.chatJSON(id: chatID)))
                    let unread = Int64(before["unread_count"]?.doubleValue ?? 0)
                    try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": \#(unread + 2)}"#)
                    let recovered = try await workspace.run(["run", "--once"])
                    #expect(recovered.exitStatus == 0, "\(recovered)")
                    #expect(recovered.stderr.contains("source recovered"), "\(recovered.stderr)")
                    // The 404's body is kept in the store (1 KiB) but not whole in the log line.
                    let dead = try #require(recovered.stderrLines.first { $0.contains("delivery dead") }, "\(recovered.stderr)")
                    #expect(dead.count < 600 && !dead.contains("END-OF-BODY"), "\(dead)")

                    let eventID = try #require(try await workspace.storedEvents(["--kind", "unread.increased"]).first?["id"]?.stringValue)
                    let replay = try await workspace.run(["replay", eventID])
                    #expect(replay.exitStatus == 0, "\(replay)")
                    let rows = try await workspace.deliveries(["--event", eventID])
                    #expect(rows.compactMap { $0["status"]?.stringValue } == ["dead", "pending"], "both attempts listed: \(rows)")

                    // An event no rule matched: replay says why and what to do.
                    try await simulator.state.patch(id: chatID, fieldsJSON: #"{"name": "Renamed"}"#)
                    try #require(try await workspace.run(["run", "--once"]).exitStatus == 0)
                    let renamed = try #require(try await workspace.storedEvents(["--kind", "chat.renamed"]).first?["id"]?.stringValue)
                    let nothing = try await workspace.run(["replay", renamed])
                    #expect(nothing.stderr.contains("no rule matched") && nothing.stderr.contains("--sink"), "\(nothing)")
                }
            }
        }

        @Test func simulatePrintsItsKeyAndItsChatsAreRecent() async throws {
            try await ChatBridgeCLI.withStarted(["simulate", "--port", "0", "--chats", "20"]) { child in
                let ready = try #require(await child.nextLine(timeout: .seconds(20)), "\(child.standardErrorSoFar)")
                let port = try #require(Int(ready.dropFirst("READY ".count)), "\(ready)")
                #expect(await eventually(timeout: .seconds(5)) { child.standardErrorSoFar.contains("X-API-KEY: sim-key") },
                        "the key it accepts: \(child.standardErrorSoFar)")
                var request = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)/api/v1/chats?limit=1")))
                request.setValue("sim-key", forHTTPHeaderField: "X-API-KEY")
                let (data, _) = try await URLSession.shared.data(for: request)
                let page = try JSONValue.parse(Array(data))
                let newest = try #require(page["items"]?.arrayValue?.first?["timestamp"]?.stringValue.flatMap(Timestamp.parseISO8601))
                #expect(abs(newest.timeIntervalSinceNow) < 300, "the newest chat is recent, so `> now - duration(\"1h\")` matches: \(newest)")
            }
        }

        @Test func aThrottledMatchIsCountedInMetrics() async throws {
            try await UnipileSimulator.withRunning(SimulatorOptions(apiKey: apiKey, chats: 4, seed: 28)) { simulator in
                let workspace = try CLIWorkspace(
                    config: CLIWorkspace.sourceYAML(url: simulator.baseURL) + "http: {listen: \"127.0.0.1:0\"}\n",
                    rules: ["every-unread.yaml": "name: every-unread\non: [unread.increased]\nthrottle: 1h\n"],
                    environment: ["E2E_API_KEY": apiKey])
                try await workspace.withStarted(["run", "--log-format", "json"]) { daemon in
                    var port: Int?
                    let listening = await eventually(timeout: .seconds(20)) {
                        let lines: [JSONValue] = daemon.standardErrorSoFar.split(separator: "\n").compactMap {
                            try? JSONValue.parse(String($0))
                        }
                        let serving: JSONValue? = lines.first { $0["msg"] == .string("serving /metrics and /healthz") }
                        if case .int(let number)? = serving?["port"] { port = Int(number) }
                        return port != nil && daemon.standardErrorSoFar.contains(#""baseline":true"#)
                    }
                    try #require(listening, "\(daemon.standardErrorSoFar)")
                    let chatID = try #require(await simulator.state.chatIDs().first)
                    let before = try JSONValue.parse(try #require(await simulator.state.chatJSON(id: chatID)))
                    let unread = Int64(before["unread_count"]?.doubleValue ?? 0)
                    for (step, expected) in [(Int64(3), 1), (6, 2)] {
                        try await simulator.state.patch(id: chatID, fieldsJSON: #"{"unread_count": \#(unread + step)}"#)
                        let stored = try await eventually(timeout: .seconds(20), interval: .milliseconds(200)) {
                            try await workspace.storedEvents(["--kind", "unread.increased"]).count == expected
                        }
                        try #require(stored, "\(daemon.standardErrorSoFar.suffix(2000))")
                    }
                    let metricsPort = try #require(port)
                    let url = try #require(URL(string: "http://127.0.0.1:\(metricsPort)/metrics"))
                    let counted = try await eventually(timeout: .seconds(10), interval: .milliseconds(200)) {
                        let (data, _) = try await URLSession.shared.data(from: url)
                        return String(decoding: data, as: UTF8.self).split(separator: "\n").contains { line in
                            line.hasPrefix("chatbridge_matches_suppressed_total{") && line.contains(#"rule="every-unread""#)
                                && line.hasSuffix(" 1")
                        }
                    }
                    #expect(counted, "chatbridge_matches_suppressed_total counts the throttled match")
                }
            }
        }
    }
}
