import Foundation
import Testing
@testable import Store

@Suite("Baseline keys")
struct BaselineKeysTests {
    private func ids(_ keys: BaselineKeys, _ positions: [UInt32]) -> [String] {
        positions.map { position in keys.withID(at: Int(position)) { String(decoding: $0, as: UTF8.self) } }
    }

    @Test func keysAreWrittenInTheBytesOrderOfTheirIds() {
        // Ids that share their first eight bytes, ids shorter than eight bytes, a prefix of
        // another id, bytes above 0x7F, and the empty id.
        let listed = ["zeta", "abcdefgh2", "abcdefgh10", "abc", "abcdefgh", "Zeta", "é", "e", "", "abcdefgh1"]
        var keys = BaselineKeys()
        for (position, id) in listed.enumerated() { keys.append(id: id, fingerprint: UInt64(position), bodyID: Int64(100 + position)) }
        let plan = keys.plan()
        #expect(ids(keys, plan.keys) == listed.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        #expect(ids(keys, plan.keys) == ["", "Zeta", "abc", "abcdefgh", "abcdefgh1", "abcdefgh10", "abcdefgh2", "e", "zeta", "é"])
        #expect(plan.supersededBodies.isEmpty)
        var visited: [(id: String, fingerprint: UInt64, bodyID: Int64)] = []
        keys.forEachKey(of: plan) { id, fingerprint, bodyID in
            visited.append((String(decoding: id, as: UTF8.self), fingerprint, bodyID))
        }
        #expect(visited.map(\.id) == ids(keys, plan.keys), "in the plan's order")
        #expect(visited.map(\.bodyID) == plan.keys.map { Int64(100 + $0) }, "each key keeps its body")
        #expect(visited.map(\.fingerprint) == plan.keys.map { UInt64($0) })
    }

    @Test func aChatListedSeveralTimesKeepsItsLastCopyAndTheOthersBodiesGo() {
        var keys = BaselineKeys()
        let listed = ["b", "a-long-chat-id", "b", "c", "a-long-chat-id", "b"]
        for (position, id) in listed.enumerated() { keys.append(id: id, fingerprint: UInt64(position), bodyID: Int64(position)) }
        let plan = keys.plan()
        #expect(ids(keys, plan.keys) == ["a-long-chat-id", "b", "c"])
        #expect(plan.keys == [4, 5, 3], "the copy listed last")
        #expect(plan.supersededBodies.sorted() == [0, 1, 2])
        #expect(keys.count == 6)
    }

    @Test func noKeysPlanNothing() {
        #expect(BaselineKeys().plan() == BaselineKeys.Plan(keys: [], supersededBodies: []))
    }
}
