// Benchmarks of the rules stage (`chatbridge-bench rules [RULES_FOLDER]`), with the
// repository's example rules (or RULES_FOLDER):
//   1. routing 100,000 events through the whole rule set (activation built once per event),
//   2. one typical condition alone, evaluated 1,000,000 times,
//   3. loading and checking 1,000 rule files,
//   4. the README's conditions, each evaluated 100,000 times,
//   5. regular expressions that backtracking engines take exponential time on, against a
//      100,000-character hostile chat name (set CHATBRIDGE_BENCH_HOSTILE_LENGTH to change it).
import CEL
import Foundation
import ChatBridgeConfig
import ChatBridgeCore
import Rules

func benchmarkRules(folder rulesFolder: String) throws {
    let scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent("chatbridge-bench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let configPath = (scratch as NSString).appendingPathComponent("chatbridge.yaml")
    try Data("sources:\n  - name: bench\n    url: http://127.0.0.1:1\n    api_key: k\n".utf8)
        .write(to: URL(fileURLWithPath: configPath))
    let configuration = try ChatBridgeConfiguration.load(path: configPath, environment: [:])
    let rules = try RuleSet.load(path: (rulesFolder as NSString).standardizingPath.hasPrefix("/")
        ? rulesFolder : FileManager.default.currentDirectoryPath + "/" + rulesFolder, configuration: configuration)

    // 1. Routing 100,000 events.
    let types = ["LINKEDIN", "WHATSAPP", "SLACK", "TELEGRAM", "INSTAGRAM", "MESSENGER", "TWITTER"]
    let kindsChoices: [[ChangeKind]] = [[.unreadIncreased, .chatActivity], [.chatArchived], [.chatRenamed], [.unreadCleared]]
    var events: [Event] = []
    events.reserveCapacity(100_000)
    for n in 0..<100_000 {
        let type = types[n % types.count]
        let chat: JSONValue = [
            "object": "Chat", "id": .string("chat_\(n)"), "account_id": "acc_1", "account_type": .string(type),
            "name": .string(n % 13 == 0 ? "Acme Corp" : "Jane Doe \(n)"), "type": 0,
            "timestamp": "2026-11-24T22:05:15.123Z", "unread_count": .int(Int64(n % 5)), "archived": .int(Int64(n % 2)),
            "muted_until": n % 3 == 0 ? -1 : nil, "read_only": 0, "content_type": n % 4 == 0 ? "inmail" : nil,
            "folder": ["INBOX"], "pinned": 0,
        ]
        events.append(Event(
            id: "e\(n)", type: .chatChanged, kinds: kindsChoices[n % kindsChoices.count], occurredAt: Date(),
            source: "bench", accountID: "acc_1", accountType: type, chatID: "chat_\(n)", chat: chat, previous: chat,
            changes: [FieldChange(field: "unread_count", from: 0, to: .int(Int64(n % 5)))]))
    }
    let now = Date()
    var matches = 0
    let routing = seconds {
        for event in events { matches += rules.routes(for: event, now: now).routes.count }
    }
    let conditions = rules.enabledRules.count
    print("rules: \(conditions) enabled rules from \(rulesFolder)")
    print(String(format: "route 100,000 events: %.3f s, %.2f µs per event, %.3f µs per rule and event (%d matches)",
                 routing, routing / 1e5 * 1e6, routing / 1e5 / Double(max(conditions, 1)) * 1e6, matches))

    // 2. One typical condition.
    let program = try CELProgram.compile(
        #"chat.account_type == "LINKEDIN" && chat.unread_count > 0"#,
        declarations: CELDeclarations(variables: ["chat"]))
    let activation = RuleVariables.activation(for: events[0], now: now)
    var trues = 0
    let single = seconds {
        for _ in 0..<1_000_000 { if case .success(.bool(true)) = program.evaluate(activation) { trues += 1 } }
    }
    print(String(format: "typical condition: %.0f ns per evaluation (%d true)", single / 1e6 * 1e9, trues))

    // 3. Loading and checking 1,000 rule files.
    let folder = (scratch as NSString).appendingPathComponent("rules")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for n in 0..<1000 {
        let text = """
            name: rule-\(n)
            on: [unread.increased, chat.added]
            when: chat.account_type == "\(types[n % types.count])" && chat.unread_count > \(n % 7) && chat.name.matches("(?i)acme\(n)")
            send: [stdout]
            throttle: 15m
            template: "{{chat.name}}: {{chat.unread_count}} unread"
            """
        try Data(text.utf8).write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("rule-\(n).yaml")))
    }
    var loaded = 0
    let loading = try seconds { loaded = try RuleSet.load(path: folder, configuration: configuration).rules.count }
    print(String(format: "load and check %d rule files: %.3f s (%.2f ms per file)", loaded, loading, loading))

    // 4. The README's conditions.
    let readmeConditions = [
        #""unread.increased" in kinds && chat.account_type == "WHATSAPP" && chat.unread_count > 2"#,
        #"has(changes.archived)"#,
        #"chat.name.matches("(?i)(acme|globex)") && chat.unread_count >= 3"#,
        #"chat.name.matches("(?i)(acme|globex|ceo)")"#,
        #"muted && "unread.increased" in kinds"#,
        #"now.getHours("Europe/Paris") >= 9 && now.getHours("Europe/Paris") < 18 && now.getDayOfWeek("Europe/Paris") in [1, 2, 3, 4, 5]"#,
        #"timestamp(chat.timestamp) > now - duration("1h")"#,
    ]
    let ruleVariables = RuleVariables.declarations
    let activations = (0..<13).map { RuleVariables.activation(for: events[$0], now: now) }
    for condition in readmeConditions {
        let compiled = try CELProgram.compile(condition, declarations: ruleVariables)
        var results = 0
        let elapsed = seconds {
            for n in 0..<100_000 { if case .success(.bool(true)) = compiled.evaluate(activations[n % 13]) { results += 1 } }
        }
        print(String(format: "%.0f ns per evaluation (%d true): %@", elapsed / 1e5 * 1e9, results, condition))
    }

    // 5. Hostile names against patterns that backtracking engines take exponential time on.
    let hostileLength = Int(ProcessInfo.processInfo.environment["CHATBRIDGE_BENCH_HOSTILE_LENGTH"] ?? "") ?? 100_000
    let hostileName = String(repeating: "a", count: hostileLength - 1) + "!"
    let hostileActivation = CELActivation(["chat": .map(CELMap(["name": .string(hostileName)]))])
    for pattern in ["(a+)+$", "(a|aa)*c", "(.*a){20}"] {
        let compiled = try CELProgram.compile("chat.name.matches(\"\(pattern)\")", declarations: CELDeclarations(variables: ["chat"]))
        var result: Result<CELValue, CELEvaluationError>?
        let elapsed = seconds { result = compiled.evaluate(hostileActivation) }
        print(String(format: "hostile %@ on %d characters: %.3f ms (%@)", pattern, hostileLength, elapsed * 1e3, String(describing: result!)))
    }
}
