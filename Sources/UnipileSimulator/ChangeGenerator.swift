/// One change the simulator made to its workspace on its own (`--change-every`, or
/// `SimulatorState.applyRandomChanges(count:)`).
public struct SimulatedChange: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// New messages: `unread_count` went up and `timestamp` moved forward.
        case newMessage = "new_message"
        /// `unread_count` went to 0.
        case read
        case archived, unarchived, pinned, unpinned, muted, unmuted, renamed
        /// A LinkedIn chat's `folder` changed.
        case moved
        case added, removed
    }

    public var kind: Kind
    public var chatID: String

    public init(kind: Kind, chatID: String) {
        self.kind = kind
        self.chatID = chatID
    }

    public var description: String { "\(kind.rawValue) \(chatID)" }
}

/// Makes random, plausible changes to a workspace, deterministically: the same seed and the
/// same sequence of calls give the same changes.
///
/// Time is simulated too: `clock` starts at the newest generated chat and moves forward a
/// little with every new message, so activity always lands after what came before.
struct ChangeGenerator: Sendable {
    private var rng: SplitMix64
    /// Unix milliseconds of the latest simulated activity.
    private(set) var clock: Int64
    /// The real time of the changes being applied, when the simulator follows a clock:
    /// activity lands between the last and now, never in the future.
    private var now: Int64?
    let factory: ChatFactory

    /// Relative likelihood of each kind of change (toggles pick their direction from the chat).
    private static let weights: [(Action, Double)] = [
        (.newMessage, 0.38), (.read, 0.20), (.toggleArchived, 0.08), (.togglePinned, 0.05),
        (.toggleMuted, 0.07), (.rename, 0.05), (.move, 0.03), (.add, 0.08), (.remove, 0.06),
    ]

    private enum Action {
        case newMessage, read, toggleArchived, togglePinned, toggleMuted, rename, move, add, remove
    }

    /// - Parameter clock: Unix milliseconds of the newest generated chat, where the
    ///   simulated time starts.
    init(seed: UInt64, factory: ChatFactory, clock: Int64 = ChatFactory.baseTime) {
        // A stream of its own, so that changes never disturb how a seed's workspace looks.
        self.rng = SplitMix64(seed: seed ^ 0x5DEE_CE66_D1CE_4E5B)
        self.clock = clock
        self.factory = factory
    }

    /// How many changes one `--change-every` tick makes (1 to 3).
    mutating func changesPerTick() -> Int { rng.int(in: 1..<4) }

    /// Applies `count` random changes to `workspace` and says what they were.
    ///
    /// - Parameter now: Unix milliseconds of the real time, when the simulator follows a
    ///   clock: new activity is not later than it (nor earlier than what came before).
    mutating func apply(count: Int, to workspace: inout ChatWorkspace, now: Int64? = nil) -> [SimulatedChange] {
        self.now = now
        defer { self.now = nil }
        return (0..<max(count, 0)).map { _ in applyOne(to: &workspace) }
    }

    private mutating func applyOne(to workspace: inout ChatWorkspace) -> SimulatedChange {
        guard workspace.count > 0 else { return add(to: &workspace) }
        let action = Self.weights[rng.weightedIndex(Self.weights.map(\.1))].0
        let chat = workspace.chat(atListingIndex: rng.int(in: 0..<workspace.count))
        switch action {
        case .newMessage:
            return newMessage(in: chat, workspace: &workspace)
        case .read:
            // Reading only makes sense for an unread chat: look for one from a random start.
            let start = rng.int(in: 0..<workspace.count)
            for offset in 0..<workspace.count {
                let candidate = workspace.chat(atListingIndex: (start + offset) % workspace.count)
                if candidate.isUnread {
                    workspace.put(candidate.setting([("unread_count", .int(0))]))
                    return SimulatedChange(kind: .read, chatID: candidate.id)
                }
            }
            return newMessage(in: chat, workspace: &workspace)
        case .toggleArchived:
            let archived = Self.isTruthy(chat[field: "archived"])
            workspace.put(chat.setting([("archived", .int(archived ? 0 : 1))]))
            return SimulatedChange(kind: archived ? .unarchived : .archived, chatID: chat.id)
        case .togglePinned:
            let pinned = Self.isTruthy(chat[field: "pinned"])
            workspace.put(chat.setting([("pinned", .int(pinned ? 0 : 1))]))
            return SimulatedChange(kind: pinned ? .unpinned : .pinned, chatID: chat.id)
        case .toggleMuted:
            if isMuted(chat[field: "muted_until"]) {
                workspace.put(chat.setting([("muted_until", .null)]))
                return SimulatedChange(kind: .unmuted, chatID: chat.id)
            }
            workspace.put(chat.setting([("muted_until", ChatFactory.activeMute(rng: &rng))]))
            return SimulatedChange(kind: .muted, chatID: chat.id)
        case .rename:
            let isGroup = (chat[field: "type"]?.int64Value ?? 0) != 0
            var name = isGroup ? ChatFactory.groupName(rng: &rng) : ChatFactory.personName(rng: &rng)
            if chat[field: "name"]?.stringValue == name { name += " ✨" }
            workspace.put(chat.setting([("name", .string(name))]))
            return SimulatedChange(kind: .renamed, chatID: chat.id)
        case .move:
            guard chat.accountType == UnipileAccountType.linkedin.rawValue else {
                return newMessage(in: chat, workspace: &workspace)
            }
            let current = chat[field: "folder"]
            var folder = rng.pick(ChatFactory.linkedInFolders).map(SimulatorJSON.string)
            if SimulatorJSON.array(folder) == current { folder.append(.string("ARCHIVE")) }
            workspace.put(chat.setting([("folder", .array(folder))]))
            return SimulatedChange(kind: .moved, chatID: chat.id)
        case .add:
            return add(to: &workspace)
        case .remove:
            workspace.remove(id: chat.id)
            return SimulatedChange(kind: .removed, chatID: chat.id)
        }
    }

    /// One to three new messages: `unread_count` rises and `timestamp` moves past both the
    /// clock and the chat's own timestamp, so the chat moves to the front.
    private mutating func newMessage(in chat: StoredChat, workspace: inout ChatWorkspace) -> SimulatedChange {
        let time = advanceClock(past: chat.sortKey.timestamp)
        let unread = Int(chat[field: "unread_count"]?.int64Value ?? 0) + rng.int(in: 1..<4)
        workspace.put(chat.setting([
            ("timestamp", .string(ISOTimestamp.format(milliseconds: time))),
            ("unread_count", .int(unread)),
        ]))
        return SimulatedChange(kind: .newMessage, chatID: chat.id)
    }

    /// A new conversation, with one unread message just now.
    private mutating func add(to workspace: inout ChatWorkspace) -> SimulatedChange {
        var id = rng.base64URLIdentifier(bytes: 16)
        while workspace.chat(id: id) != nil { id = rng.base64URLIdentifier(bytes: 16) }
        let time = advanceClock(past: nil)
        var fields = factory.makeChat(id: id, timestamp: time, rng: &rng)
        fields.set("unread_count", .int(1))
        fields.set("archived", .int(0))
        if let chat = try? StoredChat(fields: fields) { workspace.put(chat) }
        return SimulatedChange(kind: .added, chatID: id)
    }

    /// Moves the clock forward by up to two minutes (at most to `now`, and always by at
    /// least a millisecond), and past `timestamp` when given.
    private mutating func advanceClock(past timestamp: Int64?) -> Int64 {
        let step = rng.int64(in: 1..<120_000)
        if let now, now > clock {
            clock += min(step, now - clock)
        } else {
            clock += now == nil ? step : 1
        }
        if let timestamp, timestamp >= clock { clock = timestamp + 1 }
        return clock
    }

    /// `1` and `true` are truthy; everything else is not (the API sends booleans as 0/1).
    static func isTruthy(_ value: SimulatorJSON?) -> Bool {
        switch value {
        case .bool(true)?: return true
        case .number(let text)?: return Double(text).map { $0 != 0 } ?? false
        default: return false
        }
    }

    /// Whether `muted_until` mutes the chat at the simulated clock (see events.md, Muting).
    func isMuted(_ value: SimulatorJSON?) -> Bool {
        switch value {
        case .number(let text)?:
            guard let number = Double(text) else { return false }
            if number == -1 { return true }
            let milliseconds = number > 1e11 ? number : number * 1000
            return milliseconds > Double(clock)
        case .string(let text)?:
            guard let milliseconds = ISOTimestamp.parse(text) else { return false }
            return milliseconds > clock
        default:
            return false
        }
    }
}
