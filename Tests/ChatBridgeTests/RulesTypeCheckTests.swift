import CEL
import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Rules

/// A `when` that is sure not to be a bool never matches: it is refused when the rules are
/// loaded (and by `rules check`), at the start of the expression.
@Suite("Rules: conditions are type-checked")
struct RulesTypeCheckTests {
    @Test("a condition of a known non-bool type is refused with its place", arguments: [
        ("chat.unread_count", "int"),
        ("chat.unread_count + 1", "int"),
        ("chat.name", "string"),
        ("chat.name + '!'", "string"),
        ("kinds", "list"),
        ("chat.folder", "list"),
        ("kinds.map(k, k + '.')", "list"),
        ("chat", "map"),
        ("changes.unread_count", "map"),
        ("{'a': true}", "map"),
        ("now", "timestamp"),
        ("now - timestamp(chat.timestamp)", "duration"),
        ("size(chat.name)", "int"),
        ("now.getHours()", "int"),
        ("1", "int"),
        ("'true'", "string"),
        ("null", "null"),
        ("muted ? 1 : 0", "int"),
        ("event.chat.archived", "int"),
    ])
    func refused(expression: String, type: String) {
        let folder = RulesTestFolder()
        folder.write("typed.yaml", "name: typed\nwhen: \"\(expression)\"\n")
        #expect(folder.problems() == ["rules/typed.yaml:2:8: rule 'typed': `when`: the expression is of type \(type), not bool"])
    }

    @Test("a condition that is or may be a bool loads", arguments: [
        "chat.unread_count > 0",
        "muted",
        "has(chat.name) && chat.name.matches('(?i)acme')",
        "'unread.increased' in kinds",
        "kinds.exists(k, k == 'chat.added')",
        "dyn(chat.unread_count)",     // dyn: decided on each event
        "chat.is_group",              // a field the API does not document: dyn
        "chat.custom[0]",
        "previous.unread_count < chat.unread_count",
        "changes.unread_count.to > 2",
        "muted ? chat.archived == 1 : chat.custom_flag",
        "bool(chat.name)",
    ])
    func accepted(expression: String) throws {
        let folder = RulesTestFolder()
        folder.write("ok.yaml", "name: ok\nwhen: \"\(expression)\"\n")
        #expect(try folder.load().get().rules.count == 1)
    }

    @Test("the place is the expression's first token, also in a folded block after a comment")
    func placeInABlock() {
        let folder = RulesTestFolder()
        folder.write("block.yaml", """
            name: block
            when: |
              // how many are unread
                chat.unread_count
                  + 1
            """)
        #expect(folder.problems() == ["rules/block.yaml:4:5: rule 'block': `when`: the expression is of type int, not bool"])
    }

    @Test("`rules check` reports it with the configuration's other problems")
    func rulesCheck() {
        let folder = RulesTestFolder()
        folder.write("config/chatbridge.yaml", """
            sources:
              - name: main
                url: http://127.0.0.1:9
                api_key: key
            """)
        folder.write("count.yaml", "name: count\non: unread.increased\nwhen: chat.unread_count\n")
        folder.write("fine.yaml", "name: fine\nwhen: dyn(chat.unread_count)\n")
        let problems = RuleSet.checkAll(configPath: "config/chatbridge.yaml", environment: [:], currentDirectory: folder.path)
            .map(\.description)
        #expect(problems == ["rules/count.yaml:3:7: rule 'count': `when`: the expression is of type int, not bool"])
    }

    @Test("`dyn` conditions that are not a bool at run time still fail per event, as before")
    func dynamicStillCheckedPerEvent() throws {
        let condition = try RuleCondition.compile("dyn(chat.unread_count)")
        let result = condition.evaluate(CELActivation(["chat": .map(CELMap(["unread_count": .int(3)]))]))
        #expect(result == .failure(RuleConditionError(message: "the condition's value is of type int, not bool")))
    }
}
