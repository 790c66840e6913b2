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

    @Test(arguments: [4, 5])
    func observingAPageAtOnceAnswersAsOneAtATime(seed: UInt64) {
        var random = SplitMix(state: seed)
        var built = SnapshotIndex()
        for number in 0..<3_000 {
            built.set("chat-\(number)", SnapshotEntry(fingerprint: UInt64(number % 7), missing: 0))
        }
        // Tombstones: removed chats must not be found by either path.
        for number in stride(from: 0, to: 3_000, by: 11) { built.set("chat-\(number)", nil) }
        var oneAtATime = built
        var pageAtOnce = built
        for _ in 0..<20 {
            // A page: known chats (same or other fingerprint), removed ones, new ones,
            // and chats listed twice on the page or on an earlier page.
            let page = (0..<250).map { _ in
                (id: "chat-\(Int.random(in: 0..<3_400, using: &random))", fingerprint: UInt64.random(in: 0..<7, using: &random))
            }
            let expected = page.map { oneAtATime.observe(id: $0.id, fingerprint: $0.fingerprint) }
            let answered = pageAtOnce.observe(keys: page.map { ChatKey(id: $0.id) }, fingerprints: page.map(\.fingerprint))
            #expect(answered == expected)
            #expect(Set(expected).isSuperset(of: [.unchanged, .changed, .new, .repeated]))
        }
        #expect(pageAtOnce.observedCount == oneAtATime.observedCount)
        #expect(Set(pageAtOnce.absent().map(\.id)) == Set(oneAtATime.absent().map(\.id)))
    }

    @Test func loadingAStoredSnapshotIsTheSameAsSettingEachChat() {
        let chats = (0..<5_000).map { number in
            (id: number % 97 == 0 ? "chat-\(number)-é✓" : "chat-\(number)",
             entry: SnapshotEntry(fingerprint: UInt64(number) &* 0x9E37_79B9, missing: number % 3))
        }
        var setOneByOne = SnapshotIndex()
        for chat in chats { setOneByOne.set(chat.id, chat.entry) }
        // A short hint: the arrays grow past it.
        var loader = SnapshotIndex.Loader(expectedCount: 10)
        for chat in chats { Array(chat.id.utf8).withUnsafeBytes { loader.add(utf8: $0, chat.entry) } }
        var loaded = loader.finish()
        #expect(loaded.count == chats.count)
        #expect(loaded.entries == setOneByOne.entries)
        for chat in chats.prefix(300) {
            #expect(loaded.observe(id: chat.id, fingerprint: chat.entry.fingerprint) == .unchanged)
        }
        #expect(loaded.observe(id: "not-stored", fingerprint: 1) == .new)
        // The loaded index takes changes like any other: it grows and removes.
        for number in 5_000..<9_000 { loaded.set("chat-\(number)", SnapshotEntry(fingerprint: 1, missing: 0)) }
        loaded.set("chat-1", nil)
        #expect(loaded.count == 8_999)
        #expect(loaded["chat-1"] == nil)
        #expect(loaded["chat-8999"] == SnapshotEntry(fingerprint: 1, missing: 0))
    }

    @Test func aChatHandedTwiceWhileLoadingKeepsTheLaterEntry() {
        var loader = SnapshotIndex.Loader(expectedCount: 2)
        loader.add(id: "twice", SnapshotEntry(fingerprint: 1, missing: 0))
        loader.add(id: "once", SnapshotEntry(fingerprint: 3, missing: 0))
        loader.add(id: "twice", SnapshotEntry(fingerprint: 2, missing: 1))
        var index = loader.finish()
        // Keys are made at the first lookup by id; from then on the later copy wins.
        #expect(index.observe(id: "once", fingerprint: 3) == .unchanged)
        #expect(index.count == 2)
        #expect(index.entries == ["twice": SnapshotEntry(fingerprint: 2, missing: 1), "once": SnapshotEntry(fingerprint: 3, missing: 0)])
        #expect(index.absent().map(\.id) == ["twice"])
    }
}
