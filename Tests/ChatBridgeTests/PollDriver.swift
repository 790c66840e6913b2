import Foundation
@testable import ChatBridgeCore
@testable import Detect
@testable import Rules
@testable import Store

/// Drives the store the way a poller does, with chats written as JSON text.
struct PollDriver {
    let store: any BridgeStore
    let source: String
    var fingerprint = #"{"account_ids":[],"account_type":null,"unread":null}"#
    var emitBaseline = false

    func chat(_ id: String, _ fields: String = "") -> String {
        #"{"object":"Chat","id":"\#(id)","account_id":"acc","account_type":"LINKEDIN""#
            + (fields.isEmpty ? "" : ",\(fields)") + "}"
    }

    /// One complete poll listing `chats` (JSON texts), through a ``PollSession`` as the
    /// poller drives one; returns the application.
    @discardableResult
    func poll(
        _ chats: [String], at finishedAt: Date = Date(), router: @escaping EventRouter = everythingToStdout
    ) async throws -> PollApplication {
        var session = try await PollSession.begin(store: store, source: source, filterFingerprint: fingerprint)
        var index = try await session.loadIndex()
        var staged: [StagedChat] = []
        for text in chats {
            let value = try JSONValue.parse(text)
            let id = value["id"]!.stringValue!
            let fingerprint = ChatFingerprint.fingerprint(of: Array(text.utf8), seed: store.fingerprintSeed)
            if index.observe(id: id, fingerprint: fingerprint) == .unchanged { continue }
            staged.append(StagedChat(
                id: id, accountID: value["account_id"]?.stringValue, accountType: value["account_type"]?.stringValue,
                raw: Data(text.utf8), fingerprint: fingerprint))
        }
        try await session.stage(staged, now: finishedAt)
        let plan = SnapshotRules.planAbsences(
            knownCount: index.count, absent: index.absent(), suspiciousStreak: session.record?.suspiciousStreak ?? 0)
        return try await session.commit(
            CompletedPoll(
                source: source, filterFingerprint: fingerprint, isBaseline: session.isBaseline,
                emitBaseline: emitBaseline, startedAt: finishedAt.addingTimeInterval(-1), finishedAt: finishedAt, pages: 1, items: chats.count,
                reappeared: index.reappeared(), absences: plan),
            router: router)
    }

}


extension PollDriver {
    /// Every stored event, as JSON, in detection order.
    func events() async throws -> [JSONValue] {
        try await store.events(EventQuery()).map { try JSONValue.parse($0.json) }
    }
}
