import Foundation
import Testing
@testable import ChatBridgeCore
@testable import Detect

@Suite("Snapshot index: an open-addressing table against a dictionary")
struct SnapshotIndexTableTests {
    /// A small deterministic generator, so that a failure repeats.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [1, 2, 3])
    func setsRemovalsAndObservationsMatchADictionary(seed: UInt64) {
        var random = SplitMix(state: seed)
        var index = SnapshotIndex()
        var model: [String: SnapshotEntry] = [:]
        for round in 0..<4 {
            // Grow, replace and remove: the table grows and rebuilds past its tombstones.
            for _ in 0..<3_000 {
                let id = "chat-\(Int.random(in: 0..<2_000, using: &random))-ü"
                if Int.random(in: 0..<4, using: &random) == 0 {
                    index.set(id, nil)
                    model[id] = nil
                } else {
                    let entry = SnapshotEntry(fingerprint: random.next(), missing: Int.random(in: 0..<3, using: &random))
                    index.set(id, entry)
                    model[id] = entry
                }
            }
            #expect(index.count == model.count, "round \(round)")
            #expect(index.entries == model, "round \(round)")
            // A poll that lists some chats, one of them twice, and a new one.
            index.resetObservations()
            let listed = model.keys.sorted().enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
            for id in listed {
                let expected: SnapshotIndex.Observation = .unchanged
                #expect(index.observe(id: id, fingerprint: model[id]!.fingerprint) == expected)
            }
            if let again = listed.first { #expect(index.observe(id: again, fingerprint: 0) == .repeated) }
            #expect(index.observe(id: "brand-new-\(round)", fingerprint: 1) == .new)
            #expect(index.observe(id: "brand-new-\(round)", fingerprint: 1) == .repeated)
            #expect(index.observedCount == listed.count + 1)
            let absent = Set(index.absent().map(\.id))
            #expect(absent == Set(model.keys).subtracting(listed))
            #expect(Set(index.reappeared()) == Set(listed.filter { model[$0]!.missing > 0 }))
        }
    }

    @Test func loadingFromBytesIsTheSameAsFromStrings() {
        var fromBytes = SnapshotIndex(minimumCapacity: 3)
        for id in ["a", "é✓", String(repeating: "z", count: 300)] {
            Array(id.utf8).withUnsafeBytes { fromBytes.set(utf8: $0, SnapshotEntry(fingerprint: 9, missing: 1)) }
        }
        #expect(fromBytes["é✓"] == SnapshotEntry(fingerprint: 9, missing: 1))
        #expect(fromBytes.observe(id: String(repeating: "z", count: 300), fingerprint: 8) == .changed)
        #expect(Set(fromBytes.absent().map(\.id)) == ["a", "é✓"])
    }
}
