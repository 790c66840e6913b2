import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Detect
import Formats
import Rules
import Runtime
import Store
import StoreSQLite
import Unipile
import UnipileScanner
import Foundation
import Testing

/// Scanning and digesting 100,000 realistic chats (about 600 bytes each), in pages of 250.
///
/// Off by default (it is slow in debug builds). Run it in release:
///
/// ```
/// CHATBRIDGE_BENCHMARK=1 swift test -c release -Xswiftc -enable-testing --filter UnipileScannerBenchmark
/// ```
@Suite("UnipileScannerBenchmark", .enabled(if: ProcessInfo.processInfo.environment["CHATBRIDGE_BENCHMARK"] == "1"))
struct UnipileScannerBenchmarkTests {
    @Test("scan + fingerprint 100,000 chats")
    func scanHundredThousandChats() throws {
        let chatCount = 100_000
        let pageSize = 250
        var random = UnipileTestRandom(seed: 2_025)
        var pages: [[UInt8]] = []
        var expectedIDs: [String] = []
        var index = 0
        while index < chatCount {
            var items: [String] = []
            for _ in 0..<min(pageSize, chatCount - index) {
                let chat = Self.realisticChat(index, random: &random)
                expectedIDs.append(chat.id)
                items.append(chat.json)
                index += 1
            }
            let cursor = index < chatCount ? #""eyJvZmZzZXQiOj\#(index)fQ""# : "null"
            pages.append(Array((#"{"object":"ChatList","items":["# + items.joined(separator: ",") + #"],"cursor":"# + cursor + "}").utf8))
        }
        let totalBytes = pages.reduce(0) { $0 + $1.count }

        let clock = ContinuousClock()
        var best = Duration.seconds(3_600)
        var foundIDs: [String] = []
        for round in 0..<5 {
            var ids: [String] = []
            ids.reserveCapacity(chatCount)
            let elapsed = try clock.measure {
                for page in pages {
                    let scanned = try ChatPageScanner.scan(page, fingerprintSeed: 0xC0FFEE)
                    for item in scanned.items { ids.append(item.id) }
                }
            }
            best = min(best, elapsed)
            if round == 0 { foundIDs = ids }
        }
        #expect(foundIDs == expectedIDs)

        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
        let nanosecondsPerItem = seconds * 1e9 / Double(chatCount)
        let megabytesPerSecond = Double(totalBytes) / seconds / 1e6
        print(
            "UnipileScannerBenchmark: \(chatCount) chats, \(totalBytes / chatCount) bytes each, "
                + "best of 5: \(Int(seconds * 1000)) ms, \(Int(nanosecondsPerItem)) ns/item, \(Int(megabytesPerSecond)) MB/s")
    }

    /// A chat with every field of the API's Chat object, about 600 bytes.
    static func realisticChat(_ index: Int, random: inout UnipileTestRandom) -> (id: String, json: String) {
        let types = ["LINKEDIN", "WHATSAPP", "SLACK", "TWITTER", "MESSENGER", "INSTAGRAM", "TELEGRAM"]
        let names = ["Ivan Smith", "Elena García", "Zoë Ångström", "王小明", "Mia O'Connor", "Ahmed \"Sam\" Ali"]
        func token(_ length: Int) -> String {
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
            return String(decoding: (0..<length).map { _ in alphabet[Int(random.next() % 64)] }, as: UTF8.self)
        }
        let id = token(22)
        let type = types[index % types.count]
        let chat: JSONObject = [
            "object": .string("Chat"),
            "id": .string(id),
            "account_id": .string(token(22)),
            "account_type": .string(type),
            "provider_id": .string("urn:li:fsd_profile:" + token(39)),
            "attendee_provider_id": .string("ACoAA" + token(34)),
            "name": .string(names[Int(random.next() % UInt64(names.count))] + " – " + token(12)),
            "type": .int(Int64(random.next() % 3)),
            "timestamp": .string("2025-11-\(10 + index % 18)T12:\(10 + index % 50):07.356Z"),
            "unread_count": .int(Int64(random.next() % 5)),
            "archived": .int(0),
            "muted_until": index % 9 == 0 ? .int(-1) : .null,
            "read_only": .int(0),
            "disabledFeatures": .array([.string("reactions"), .string("reply")]),
            "subject": .string("Re: proposal for Q\(index % 4 + 1) — \(token(20))"),
            "organization_id": .string(token(16)),
            "mailbox_id": .string(token(16)),
            "content_type": .string("inmail"),
            "folder": .array([.string("INBOX"), .string("INBOX_LINKEDIN_CLASSIC"), .string("INBOX_LINKEDIN_RECRUITER")]),
            "pinned": .int(0),
        ]
        return (id, JSONValue.object(chat).compactString)
    }
}
