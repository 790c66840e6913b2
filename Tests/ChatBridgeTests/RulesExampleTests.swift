import Foundation
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

@Suite("Rules examples in rules/")
struct RulesExampleTests {
    /// The repository's `rules/` folder, found from this file's path.
    static let rulesFolder: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent() // ChatBridgeTests
        url.deleteLastPathComponent() // Tests
        url.deleteLastPathComponent() // the repository
        return url.appendingPathComponent("rules").path
    }()

    /// A configuration with only `stdout`, as `chatbridge demo` runs: the examples must
    /// need nothing else.
    static func demoConfiguration() -> ChatBridgeConfiguration {
        ChatBridgeConfiguration(
            file: "", baseDirectory: "/", sources: [], storePath: "/dev/null", rulesPath: rulesFolder,
            rulesPathIsExplicit: true)
    }

    static func load() throws -> RuleSet {
        try RuleSet.load(path: rulesFolder, configuration: demoConfiguration())
    }

    @Test("every example loads without a problem, sends to stdout only, and has a description")
    func examplesLoad() throws {
        let (ruleSet, problems) = RuleSet.loadCollectingProblems(
            path: Self.rulesFolder, sinkNames: ["stdout"], mayBeAbsent: false, currentDirectory: "/")
        #expect(problems.map(\.description) == [])
        #expect(ruleSet.rules.map(\.name) == [
            "account-problems", "archived-or-unarchived", "linkedin-inmail-unread", "muted-chat-got-messages", "office-hours",
            "vip-names", "whatsapp-unread",
        ])
        for rule in ruleSet.rules {
            #expect(rule.sinks == ["stdout"], "\(rule.name)")
            #expect(rule.isEnabled, "\(rule.name)")
            #expect(rule.description?.isEmpty == false, "\(rule.name)")
        }
    }

    @Test("the LinkedIn example is the documented rule, sending to stdout")
    func linkedInExample() throws {
        let rule = try #require(try Self.load().rule(named: "linkedin-inmail-unread"))
        #expect(rule.on == ["unread.increased", "chat.added"])
        #expect(rule.throttle == .seconds(900))
        #expect(rule.template?.text == "New InMail in {{chat.name}} ({{chat.unread_count}} unread)")
    }

    @Test("account.error and account.recovered reach someone, and rules check has nothing to warn about")
    func accountExample() throws {
        for type in [EventType.accountError, .accountRecovered] {
            let event = Event(
                id: "0193a6f2-7c1e-7b4a-9d1e-2f0c5e8b1a79", type: type, kinds: [], occurredAt: RuleTestEvents.occurredAt,
                source: "main", error: type == .accountError ? ["status": .int(401)] : nil)
            #expect(try matches(event) == ["account-problems"], "\(type)")
        }
        #expect(try Self.load().accountErrorWarning == nil)
    }

    private func matches(_ event: Event, now: Date = RuleTestEvents.occurredAt) throws -> [String] {
        try Self.load().evaluate(event, now: now).filter(\.isMatch).map(\.rule)
    }

    @Test("the examples match the events they describe, and only those")
    func examplesMatch() throws {
        let monday4pmParis = RuleTestEvents.occurredAt // 2026-09-21T14:13:20Z
        let sunday = monday4pmParis.addingTimeInterval(-86_400)
        let mondayNight = monday4pmParis.addingTimeInterval(10 * 3600)

        // A LinkedIn InMail with 3 unread, during office hours.
        let inmail = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(contentType: .string("inmail")))
        #expect(try matches(inmail, now: monday4pmParis) == ["linkedin-inmail-unread", "office-hours"])
        #expect(try matches(inmail, now: sunday) == ["linkedin-inmail-unread"])
        #expect(try matches(inmail, now: mondayNight) == ["linkedin-inmail-unread"])

        // WhatsApp: above 2 matches, 2 does not.
        let whatsapp3 = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(accountType: "WHATSAPP", unread: 3))
        let whatsapp2 = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(accountType: "WHATSAPP", unread: 2))
        #expect(try matches(whatsapp3, now: sunday) == ["whatsapp-unread"])
        #expect(try matches(whatsapp2, now: sunday) == [])

        // A muted chat with more unread messages; a chat with a null name does not trip vip-names.
        let muted = RuleTestEvents.unreadIncreased(RuleTestEvents.chat(name: .null, mutedUntil: .int(-1)))
        #expect(try matches(muted, now: sunday) == ["muted-chat-got-messages"])

        // VIP names, case-insensitive, in the name or the subject.
        let ceo = RuleTestEvents.added(RuleTestEvents.chat(name: .string("Jane (CEO)"), unread: 0))
        #expect(try matches(ceo) == ["vip-names"])
        var subjectChat = RuleTestEvents.chat(name: .string("John"))
        if case .object(var object) = subjectChat {
            object["subject"] = .string("Partnership with ACME Corp")
            subjectChat = .object(object)
        }
        #expect(try matches(RuleTestEvents.unreadIncreased(subjectChat), now: sunday) == ["vip-names"])

        // Archived and unarchived.
        var archived = RuleTestEvents.unreadIncreased(RuleTestEvents.chat())
        archived.kinds = [.chatArchived]
        archived.changes = [FieldChange(field: "archived", from: .int(0), to: .int(1))]
        #expect(try matches(archived, now: sunday) == ["archived-or-unarchived"])
        archived.kinds = [.chatUnarchived]
        #expect(try matches(archived, now: sunday) == ["archived-or-unarchived"])
    }
}
