import ChatBridgeCore
import Detect
import Foundation
import Store
import Testing
@testable import Runtime
import UnipileScanner

/// A page body around `items` (raw JSON texts).
private func page(_ items: [String]) -> [UInt8] {
    Array((#"{"object":"ChatList","items":["# + items.joined(separator: ",") + #"],"cursor":null}"#).utf8)
}

private func fingerprint(_ item: String, seed: UInt64 = 7) -> UInt64 {
    ChatFingerprint.fingerprint(of: Array(item.utf8), seed: seed)
}

/// Items whose strings hold what could end them early: braces, brackets, quotes, escapes.
private let hostileItems = [
    #"{"id":"t","name":"}}]]\"{[","subject":"\\\"","folder":["]","}","\\"]}"#,
    #"{"id":"u","nested":{"a":[{"b":"\\\\"},[],{}]},"n":-1.5e3,"ok":true,"no":null}"#,
    #"{ "id" : "v" , "name" : "\u007d\u005d" , "é" : "✓\ud83d\ude00" }"#,
    #"{"id":"w","empty":"","quote":"\"","slash":"\/"}"#,
]

@Suite("Chats recognised by their bytes")
struct RecognisedChatsTests {
    @Test("an item's end is found by its strings and brackets alone, whatever its strings hold")
    func objectEnds() throws {
        let body = page(hostileItems)
        let scanned = try ChatPageScanner.scan(body, fingerprintSeed: 7)
        #expect(scanned.items.count == hostileItems.count)
        body.withUnsafeBytes { bytes in
            for item in scanned.items {
                #expect(ChatPageScanner.objectEnd(in: bytes, from: item.range.lowerBound) == item.range.upperBound)
            }
            // An item cut short has no end.
            let cut = UnsafeRawBufferPointer(rebasing: bytes[..<(scanned.items[1].range.upperBound - 1)])
            #expect(ChatPageScanner.objectEnd(in: cut, from: scanned.items[1].range.lowerBound) == nil)
        }
    }

    @Test("known items are only located; the others are scanned in full, in page order")
    func knownItemsAreLocated() throws {
        let body = page(hostileItems)
        let known: Set<UInt64> = [fingerprint(hostileItems[0]), fingerprint(hostileItems[2])]
        var asked: [[UInt64]] = []
        let scanned = try ChatPageScanner.scan(body, fingerprintSeed: 7) { fingerprints in
            asked.append(fingerprints)
            return fingerprints.map(known.contains)
        }
        // One question per page, about every item.
        #expect(asked == [hostileItems.map { fingerprint($0) }])
        #expect(scanned.itemCount == 4)
        #expect(scanned.recognised.map(\.fingerprint) == [fingerprint(hostileItems[0]), fingerprint(hostileItems[2])])
        #expect(scanned.recognised.map { String(decoding: body[$0.range], as: UTF8.self) } == [hostileItems[0], hostileItems[2]])
        let chatPage = ChatPage(number: 1, body: body, scanned: scanned)
        #expect(scanned.items.map { chatPage.id(of: $0) } == ["u", "w"])
        // A recognised chat can still be scanned in full.
        let second = try chatPage.item(scanned.recognised[1], fingerprintSeed: 7)
        #expect(chatPage.id(of: second) == "v")
        #expect(second.fingerprint == fingerprint(hostileItems[2]))
    }

    @Test(
        "a page with a problem is refused as a plain scan refuses it, even when its items are known",
        arguments: [
            [#"{"id":"a"}"#, #"{"id":"b"} {"id":"c"}"#],  // no comma between items
            [#"{"id":"a"}"#, #"{"id":"b","n":01}"#],  // an unknown item that is not JSON
            [#"{"id":"a"}"#, #"{"id":"b""#],  // cut short
            [#"{"id":"a"}"#, #"{"name":"no id"}"#],  // an unknown item without an id
            [#"{"id":"a"}"#, #""a string""#],  // not an object
        ])
    func problemsAreThePlainScansProblems(items: [String]) throws {
        let body = page(items)
        let plain = #expect(throws: ChatPageScanError.self) { try ChatPageScanner.scan(body, fingerprintSeed: 7) }
        let recognising = #expect(throws: ChatPageScanError.self) {
            try ChatPageScanner.scan(body, fingerprintSeed: 7) { $0.map { $0 == fingerprint(items[0]) } }
        }
        #expect(plain == recognising)
    }

    @Test("a claimed chat counts as listed, unchanged, once; a removed or changed one is not claimed")
    func claims() {
        var index = SnapshotIndex()
        index.set("a", SnapshotEntry(fingerprint: 1, missing: 0))
        index.set("b", SnapshotEntry(fingerprint: 2, missing: 1))
        index.set("c", SnapshotEntry(fingerprint: 3, missing: 0))
        index.set("c", nil)
        index.set("b", SnapshotEntry(fingerprint: 20, missing: 1))  // b's bytes changed since
        let lookup = index.fingerprintLookup
        #expect(lookup.contains([1, 2, 20, 4]) == [true, false, true, false])
        #expect(index.claim([1, 1, 2, 3, 20]) == [true, false, false, false, true])
        #expect(index.observedCount == 2)
        #expect(index.observe(id: "a", fingerprint: 1) == .repeated)
        #expect(index.absent().isEmpty)
        #expect(index.reappeared() == ["b"])
        index.resetObservations()
        #expect(index.claim([20]) == [true])
        #expect(index.absent().map(\.id) == ["a"])
    }

    @Test("a loaded index answers claims and lists without making the ids' keys, and makes them when asked by id")
    func loadedIndexWithoutKeys() {
        var loader = SnapshotIndex.Loader(expectedCount: 3)
        for (id, fingerprint) in [("x", UInt64(10)), ("y", 11), ("z", 12)] {
            loader.add(id: id, SnapshotEntry(fingerprint: fingerprint, missing: 0))
        }
        var index = loader.finish()
        #expect(index["y"] == SnapshotEntry(fingerprint: 11, missing: 0))
        #expect(index["nope"] == nil)
        #expect(index.claim([10, 12]) == [true, true])
        #expect(index.absent().map(\.id) == ["y"])
        #expect(index.observe(id: "y", fingerprint: 99) == .changed)
        #expect(index.observe(id: "new", fingerprint: 1) == .new)
        #expect(index.observedCount == 4)
        index.set("x", nil)
        #expect(index.entries == ["y": SnapshotEntry(fingerprint: 11, missing: 0), "z": SnapshotEntry(fingerprint: 12, missing: 0)])
    }

    /// A chat listed twice on one page: the later copy wins, whichever of the two the
    /// scanner recognised.
    @Test("a chat listed twice on a page keeps its later copy, recognised or not", arguments: [false, true])
    func laterCopyWins(storedCopyLast: Bool) throws {
        let stored = #"{"id":"a","unread_count":0}"#
        let changed = #"{"id":"a","unread_count":5}"#
        let other = #"{"id":"b"}"#
        var loader = SnapshotIndex.Loader(expectedCount: 2)
        loader.add(id: "a", SnapshotEntry(fingerprint: fingerprint(stored), missing: 0))
        loader.add(id: "b", SnapshotEntry(fingerprint: fingerprint(other), missing: 0))
        var index = loader.finish()
        let lookup = index.fingerprintLookup
        let items = storedCopyLast ? [changed, other, stored] : [stored, other, changed]
        let body = page(items)
        let scanned = try ChatPageScanner.scan(body, fingerprintSeed: 7) { lookup.contains($0) }
        #expect(scanned.recognised.count == 2)
        let staged = try SourcePoller.changedChats(
            of: ChatPage(number: 1, body: body, scanned: scanned), index: &index, fingerprintSeed: 7)
        // Staged in page order; the store keeps the last copy of a chat.
        #expect(staged.map(\.id) == (storedCopyLast ? ["a", "a"] : ["a"]))
        let last = Dictionary(staged.map { ($0.id, $0.fingerprint) }, uniquingKeysWith: { _, later in later })
        #expect(last == ["a": fingerprint(items[2])])
        #expect(index.observedCount == 2)
    }
}
