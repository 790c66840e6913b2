import Foundation

/// One connected account of the simulated workspace.
struct SimulatedAccount: Sendable, Equatable {
    var id: String
    var type: UnipileAccountType
}

/// Makes realistic chats: every field of the seed's Chat object, ids shaped like each
/// provider's, names in several scripts, LinkedIn folders and content types, and every form
/// `muted_until` takes (null, -1, Unix seconds, Unix milliseconds, ISO strings).
///
/// All randomness comes from the `SplitMix64` passed in, so a seed fixes everything.
struct ChatFactory: Sendable {
    /// Unix milliseconds of the newest chat of a freshly generated workspace
    /// (2025-11-23T12:13:20Z); later activity happens after it.
    static let baseTime: Int64 = 1_763_900_000_000
    /// 2036-01-01T00:00:00Z in Unix seconds: mutes "until" a date far ahead.
    static let farFutureSeconds: Int64 = 2_082_758_400
    /// 2020-09-13 in Unix seconds: a mute that ended long ago.
    static let pastSeconds: Int64 = 1_600_000_000

    let accounts: [SimulatedAccount]
    private let accountWeights: [Double]

    /// Share of chats per provider: LinkedIn-heavy, like a sales team's workspace.
    private static let typeWeights: [(UnipileAccountType, weight: Double, accounts: Int)] = [
        (.whatsapp, 0.25, 6), (.linkedin, 0.35, 10), (.slack, 0.10, 2), (.twitter, 0.05, 2),
        (.messenger, 0.08, 3), (.instagram, 0.09, 3), (.telegram, 0.08, 3),
    ]

    static let firstNames = [
        "Jane", "John", "Amélie", "Lucas", "Sofia", "Mohammed", "Wei", "Olga", "Priya", "Carlos",
        "Hannah", "Kenji", "Fatima", "Liam", "Chloé", "Mateo", "Anna", "Noah", "Zoë", "Ivan",
        "Sarah", "David", "Yuki", "Emma", "Oliver", "Léa", "Ahmed", "Elena", "Marco", "Nina",
    ]
    static let lastNames = [
        "Doe", "Smith", "Martin", "Bernard", "García", "Müller", "Rossi", "Nguyen", "Kowalski",
        "Johansson", "O'Brien", "Dubois", "Silva", "Tanaka", "Petrov", "Haddad", "Kim", "Novak",
        "Fernández", "Schneider", "Lefèvre", "Andersen", "Costa", "Moreau", "Wójcik",
    ]
    static let groupWords = [
        "Sales", "Team", "Project", "Launch", "Family", "Weekend", "Marketing", "Ops",
        "Board", "Friends", "Book club", "Hiking", "Q3 planning", "Customer success",
        "Recruiting", "Design review", "Paris office", "Standup", "Investors", "🎉 Party",
    ]
    static let subjects = [
        "Opportunity at {c}", "Quick question about your role", "Partnership proposal",
        "Following up on our call", "Senior Engineer position — {c}", "Invitation: webinar",
        "Your profile caught my attention", "Re: pricing",
    ]
    static let companies = [
        "Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Hooli", "Vandelay",
        "Wayne Enterprises", "Soylent", "Pied Piper",
    ]
    static let linkedInFolders: [[String]] = [
        ["INBOX", "INBOX_LINKEDIN_CLASSIC"], ["INBOX", "INBOX_LINKEDIN_RECRUITER"],
        ["INBOX", "INBOX_LINKEDIN_SALES_NAVIGATOR"], ["INBOX_LINKEDIN_ORGANIZATION"],
        ["INBOX", "INBOX_LINKEDIN_CLASSIC", "ARCHIVE"],
    ]
    static let disabledFeatures: [[String]] = [[], [], [], ["reactions"], ["reply"], ["reactions", "reply"]]
    static let slackChannelSubjects = ["General discussion", "Announcements", "Random", "Help desk"]

    /// Draws the workspace's accounts (6 WhatsApp, 10 LinkedIn, 2 Slack, ...).
    init(rng: inout SplitMix64) {
        var accounts: [SimulatedAccount] = []
        var weights: [Double] = []
        for (type, weight, count) in Self.typeWeights {
            for _ in 0..<count {
                accounts.append(SimulatedAccount(id: rng.base64URLIdentifier(bytes: 16), type: type))
                weights.append(weight / Double(count))
            }
        }
        self.accounts = accounts
        self.accountWeights = weights
    }

    /// A new chat's fields, in the seed's order. `attendee_provider_id` is left out for
    /// group chats and channels (it is optional in the schema).
    func makeChat(id: String, timestamp: Int64?, rng: inout SplitMix64) -> [SimulatorJSON.Member] {
        let account = accounts[rng.weightedIndex(accountWeights)]
        let chatType = rng.chance(0.8) ? 0 : (rng.chance(0.9) ? 1 : 2)
        let (providerID, attendeeProviderID) = Self.providerIDs(type: account.type, chatType: chatType, rng: &rng)
        var name: String? = chatType == 0 ? Self.personName(rng: &rng) : Self.groupName(rng: &rng)
        if rng.chance(0.03) { name = nil }
        let unread = rng.chance(0.75) ? 0 : Int(rng.exponential(mean: 4)) + 1
        let muted = Self.mutedUntil(rng: &rng, mutedShare: 0.15)

        var subject: String?
        var organizationID: String?
        var mailboxID: String?
        var contentType: String?
        var folder = ["INBOX"]
        if account.type == .linkedin {
            folder = rng.pick(Self.linkedInFolders)
            // InMail, sponsored messages and offers are one-to-one conversations.
            let r = rng.unit()
            if chatType == 0 {
                contentType = r < 0.15 ? "inmail" : (r < 0.20 ? "sponsored" : (r < 0.22 ? "linkedin_offer" : nil))
            }
            if contentType != nil || rng.chance(0.1) {
                subject = rng.pick(Self.subjects).replacingCompany(with: rng.pick(Self.companies))
            }
            if folder.contains("INBOX_LINKEDIN_ORGANIZATION") {
                organizationID = rng.digits(8)
                mailboxID = "urn:li:fsd_profile:ACoAA" + rng.base64URLIdentifier(bytes: 24).prefix(30)
            }
        } else if account.type == .slack, chatType != 0 {
            subject = rng.pick(Self.slackChannelSubjects)
        }
        let archived = rng.chance(0.06)
        let readOnly = contentType == "sponsored" || (chatType == 2 && rng.chance(0.5))
        let disabled = rng.pick(Self.disabledFeatures)
        let pinned = rng.chance(0.02)

        var fields: [SimulatorJSON.Member] = [
            .init("object", .string("Chat")),
            .init("id", .string(id)),
            .init("account_id", .string(account.id)),
            .init("account_type", .string(account.type.rawValue)),
            .init("provider_id", .string(providerID)),
        ]
        if let attendeeProviderID { fields.append(.init("attendee_provider_id", .string(attendeeProviderID))) }
        fields += [
            .init("name", .optionalString(name)),
            .init("type", .int(chatType)),
            .init("timestamp", .optionalString(timestamp.map(ISOTimestamp.format(milliseconds:)))),
            .init("unread_count", .int(unread)),
            .init("archived", .int(archived ? 1 : 0)),
            .init("muted_until", muted),
            .init("read_only", .int(readOnly ? 1 : 0)),
            .init("disabledFeatures", .array(disabled.map(SimulatorJSON.string))),
            .init("subject", .optionalString(subject)),
            .init("organization_id", .optionalString(organizationID)),
            .init("mailbox_id", .optionalString(mailboxID)),
            .init("content_type", .optionalString(contentType)),
            .init("folder", .array(folder.map(SimulatorJSON.string))),
            .init("pinned", .int(pinned ? 1 : 0)),
        ]
        return fields
    }

    /// A `muted_until` value: `null` for `1 - mutedShare` of chats, otherwise one of the forms
    /// the API uses (-1 forever, Unix seconds, Unix milliseconds, ISO string; most in the
    /// future, some long past).
    static func mutedUntil(rng: inout SplitMix64, mutedShare: Double) -> SimulatorJSON {
        guard rng.chance(mutedShare) else { return .null }
        let r = rng.unit()
        let futureSeconds = farFutureSeconds + rng.int64(in: 0..<1_000_000)
        switch r {
        case ..<0.33: return .int(-1)
        case ..<0.46: return .int64(futureSeconds)
        case ..<0.60: return .int64(futureSeconds * 1000 + rng.int64(in: 0..<1000))
        case ..<0.80: return .string(ISOTimestamp.format(milliseconds: futureSeconds * 1000))
        default: return .int64(pastSeconds + rng.int64(in: 0..<1_000_000))
        }
    }

    /// A muting value that makes a chat muted now (never `null`, never in the past).
    static func activeMute(rng: inout SplitMix64) -> SimulatorJSON {
        let futureSeconds = farFutureSeconds + rng.int64(in: 0..<1_000_000)
        switch rng.int(in: 0..<4) {
        case 0: return .int(-1)
        case 1: return .int64(futureSeconds)
        case 2: return .int64(futureSeconds * 1000)
        default: return .string(ISOTimestamp.format(milliseconds: futureSeconds * 1000))
        }
    }

    static func personName(rng: inout SplitMix64) -> String {
        "\(rng.pick(firstNames)) \(rng.pick(lastNames))"
    }

    static func groupName(rng: inout SplitMix64) -> String {
        let first = rng.pick(groupWords)
        var second = rng.pick(groupWords)
        if second == first { second = groupWords[(groupWords.firstIndex(of: first)! + 1) % groupWords.count] }
        var name = "\(first) \(second)"
        if rng.chance(0.3) { name += " \(rng.int(in: 2019..<2026))" }
        return name
    }

    /// `(provider_id, attendee_provider_id)` shaped like the provider's real ids; the
    /// attendee is `nil` for groups and channels.
    static func providerIDs(type: UnipileAccountType, chatType: Int, rng: inout SplitMix64) -> (String, String?) {
        let oneToOne = chatType == 0
        func slackID(_ prefix: String) -> String {
            let raw = rng.base64URLIdentifier(bytes: 8).uppercased()
                .replacingOccurrences(of: "-", with: "X").replacingOccurrences(of: "_", with: "Y")
            return prefix + raw.prefix(9)
        }
        switch type {
        case .linkedin:
            let raw = "\(rng.base64URLIdentifier(bytes: 9))-\(rng.base64URLIdentifier(bytes: 6))_0\(rng.int(in: 10..<99))"
            let providerID = "2-" + Base64URL.encodeStandard(Array(raw.utf8))
            let attendee = oneToOne ? "ACoAA" + rng.base64URLIdentifier(bytes: 26).prefix(34) : nil
            return (providerID, attendee)
        case .whatsapp:
            if oneToOne {
                let number = rng.pick(["33", "1", "44", "49", "34", "55"]) + rng.digits(9) + "@s.whatsapp.net"
                return (number, number)
            }
            return ("120363" + rng.digits(12) + "@g.us", nil)
        case .slack:
            let providerID = slackID(oneToOne ? "D0" : "C0")
            return (providerID, oneToOne ? slackID("U0") : nil)
        case .twitter:
            let user = rng.digits(18)
            let other = rng.digits(10)
            return ("\(other)-\(user)", oneToOne ? user : nil)
        case .messenger:
            let providerID = rng.digits(16)
            return (providerID, oneToOne ? rng.digits(15) : nil)
        case .instagram:
            let providerID = "340282366841710300949128" + rng.digits(15)
            return (providerID, oneToOne ? rng.digits(11) : nil)
        case .telegram:
            if oneToOne {
                let user = rng.digits(10)
                return (user, user)
            }
            return ("-100" + rng.digits(10), nil)
        }
    }
}

/// Generates whole workspaces from a seed.
enum WorkspaceGenerator {
    /// Share of generated chats whose `timestamp` is `null` (chats without any message yet).
    static let nullTimestampShare = 0.005

    /// `count` chats, the newest at `newest` (Unix milliseconds; `ChatFactory.baseTime` by
    /// default), older ones mostly seconds to hours apart. The same `(count, seed)` always
    /// gives the same chats, at the same offsets from `newest`.
    static func generate(
        chats count: Int, seed: UInt64, newest: Int64 = ChatFactory.baseTime
    ) -> (ChatWorkspace, ChatFactory) {
        var rng = SplitMix64(seed: seed)
        let factory = ChatFactory(rng: &rng)
        var chats: [StoredChat] = []
        chats.reserveCapacity(count)
        var time = newest
        var ids = Set<String>()
        for index in 0..<count {
            if index > 0 { time -= Int64(rng.exponential(mean: 90_000)) + 1 }
            let timestamp = rng.chance(nullTimestampShare) ? nil : time
            var id = rng.base64URLIdentifier(bytes: 16)
            while !ids.insert(id).inserted { id = rng.base64URLIdentifier(bytes: 16) }
            let fields = factory.makeChat(id: id, timestamp: timestamp, rng: &rng)
            // Generated chats always carry a string id, so they always validate.
            if let chat = try? StoredChat(fields: fields) { chats.append(chat) }
        }
        return (ChatWorkspace(chats), factory)
    }
}

extension Base64URL {
    /// Standard, padded base64 (RFC 4648 §4), as LinkedIn's provider ids use.
    static func encodeStandard(_ bytes: [UInt8]) -> String {
        var text = encode(bytes).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        return text
    }
}

extension String {
    fileprivate func replacingCompany(with company: String) -> String {
        replacingOccurrences(of: "{c}", with: company)
    }
}
