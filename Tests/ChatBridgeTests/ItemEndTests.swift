import CJSONStructure
import ChatBridgeCore
import Foundation
import Testing
import UnipileScanner

/// Every answer of ``ChatPageScanner/objectEnd(in:from:)``, both ways of making the block
/// masks, against following each byte, for every start in `bytes`: `nil` when all agree,
/// else what differs.
private func disagreement(_ bytes: [UInt8], starts: [Int]? = nil) -> String? {
    bytes.withUnsafeBytes { body in
        for start in starts ?? Array(bytes.indices) {
            let expected = ChatPageScanner.objectEndByteByByte(in: body, from: start)
            for masks in ChatPageScanner.BlockMasks.allCases {
                let found = ChatPageScanner.objectEnd(in: body, from: start, masks: masks)
                if found != expected {
                    let text = String(decoding: bytes, as: UTF8.self).debugDescription
                    return "from \(start) with \(masks) masks: \(found.map(String.init) ?? "nil"), "
                        + "byte by byte: \(expected.map(String.init) ?? "nil"), in \(bytes.count) bytes \(text)"
                }
            }
        }
        return nil
    }
}

/// What the C block walk answers by itself, before any fallback.
private func blockAnswer(_ text: String, from start: Int = 0) -> Int {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBufferPointer { chatbridge_json_object_end($0.baseAddress!, $0.count, start) }
}

/// A chat like the ones Unipile lists, `n` making each one different.
private func chat(_ n: Int) -> String {
    #"{"object":"Chat","id":"c\#(n)","account_id":"a\#(n % 3)","account_type":"WHATSAPP","name":"N° \#(n) \"q\" {x}","#
        + #""type":\#(n % 3),"unread_count":\#(n % 5),"muted_until":-1,"disabledFeatures":["reactions"],"#
        + #""subject":null,"folder":["INBOX","INBOX_\#(n)"],"nested":{"a":[{}]},"pinned":0}"#
}

@Suite("Where an item ends, 64 bytes at a time")
struct ItemEndTests {
    @Test("the block walk finds each chat's end by itself")
    func chatsAreFoundByBlocks() throws {
        let items = (0..<40).map(chat)
        let body = Array((#"{"items":["# + items.joined(separator: ",") + "]}").utf8)
        let scanned = try ChatPageScanner.scan(body, fingerprintSeed: 7)
        #expect(scanned.items.count == 40)
        body.withUnsafeBufferPointer { bytes in
            for item in scanned.items {
                // Not the fallback: the vector answer itself.
                #expect(chatbridge_json_object_end(bytes.baseAddress!, bytes.count, item.range.lowerBound) == item.range.upperBound)
                #expect(chatbridge_json_object_end_portable(bytes.baseAddress!, bytes.count, item.range.lowerBound) == item.range.upperBound)
            }
        }
        #expect(disagreement(body) == nil)
    }

    @Test(
        "strings that hide brackets and quotes, across every block boundary",
        arguments: [
            #"{"a":"}]"}"#, #"{"a":"\"}"}"#, #"{"a":"\\"}"#, #"{"a":"\\\"}"}"#, #"{"a":"\\\\"}"#,
            #"{"a":"\u007d\u005d"}"#, #"{"a":["]",{"b":"{"}]}"#, #"{"é":"✓\ud83d\ude00","b":[]}"#,
            #"{"a":"\"#, #"{"a":"unterminated}"#, #"{"a":[1,2}"#, "{", #"{"a":"\\\\\\\"]}"]}"#,
            #"]"#, #"x}"#, #"""#, #"{"a":"b"}}"#,
        ])
    func hostileStrings(item: String) {
        // Every shift of the item against the 64-byte blocks, starting in and out of it.
        for padding in 0..<70 {
            let bytes = Array((String(repeating: " ", count: padding) + item + " ").utf8)
            if let problem = disagreement(bytes) {
                Issue.record("\(problem)")
                return
            }
        }
    }

    @Test("every run of backslashes up to 130 long, before a quote, a bracket, or the end")
    func backslashRuns() {
        for run in 0...130 {
            for after in [#""}"#, "}", "", #"\"#, "a}"] {
                for opening in [#"{""#, #"{"a":""#, "{"] {
                    let bytes = Array((opening + String(repeating: #"\"#, count: run) + after + #"""}"#).utf8)
                    if let problem = disagreement(bytes, starts: [0, 1]) {
                        Issue.record("\(problem)")
                        return
                    }
                }
            }
        }
    }

    @Test("a backslash outside every string: the blocks cannot tell, and each byte is followed")
    func backslashOutsideStrings() {
        // Byte by byte the quote opens a string that never ends; the escape masks alone
        // would take it as hidden and end the object at the `}`.
        #expect(blockAnswer(#"{\"}"#) == CHATBRIDGE_JSON_UNDECIDED)
        #expect(Array(#"{\"}"#.utf8).withUnsafeBytes { ChatPageScanner.objectEnd(in: $0, from: 0) } == nil)
        #expect(blockAnswer(#"[\"]""#) == CHATBRIDGE_JSON_UNDECIDED)
        #expect(Array(#"[\"]""#.utf8).withUnsafeBytes { ChatPageScanner.objectEnd(in: $0, from: 0) } == nil)
        #expect(blockAnswer(#"{"a":"\""}"#) == 10)
        #expect(blockAnswer(#"{"a":"b"#) == CHATBRIDGE_JSON_NO_END)
        #expect(blockAnswer(#"{"a":"b"}"#, from: 9) == CHATBRIDGE_JSON_NO_END)
        #expect(disagreement(Array(#"{\"}"#.utf8)) == nil)
        #expect(disagreement(Array(#"{"a":[\\"]}"]}"#.utf8)) == nil)
    }

    @Test("pages cut anywhere, ending just before an unreadable page: nothing past the end is read")
    func truncatedPages() throws {
        let page = Array((#"{"items":["# + (0..<4).map(chat).joined(separator: ",") + "]}").utf8)
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        #expect(page.count < pageSize)
        // Two pages of memory, the second one unreadable: a read past the bytes traps.
        guard let memory = mmap(nil, 2 * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              memory != MAP_FAILED
        else { throw POSIXError(.ENOMEM) }
        defer { munmap(memory, 2 * pageSize) }
        #expect(mprotect(memory + pageSize, pageSize, PROT_NONE) == 0)
        for length in 0...page.count {
            let start = memory + pageSize - length
            page.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: length) }
            let body = UnsafeRawBufferPointer(start: start, count: length)
            for offset in 0..<length where offset == 0 || body[offset] == UInt8(ascii: "{") {
                let expected = ChatPageScanner.objectEndByteByByte(in: body, from: offset)
                for masks in ChatPageScanner.BlockMasks.allCases {
                    #expect(ChatPageScanner.objectEnd(in: body, from: offset, masks: masks) == expected, "\(length) bytes, from \(offset)")
                }
            }
        }
    }

    @Test("random bytes and mutated chats agree with following each byte")
    func randomAndMutated() {
        var random = UnipileTestRandom(seed: 0xB10C)
        let alphabet = Array(#"{}[]"\\\ a:,0é"#.utf8) + [0x80, 0xFF, 0x00]
        for round in 0..<600 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                // Random text from an alphabet heavy in what matters, up to three blocks long.
                bytes = (0..<Int(random.next() % 200)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            } else {
                // A chat or two with a few bytes changed, removed or added.
                bytes = Array((chat(round) + "," + chat(round + 1)).utf8)
                for _ in 0..<Int(random.next() % 4 + 1) {
                    let position = Int(random.next() % UInt64(bytes.count))
                    let byte = alphabet[Int(random.next() % UInt64(alphabet.count))]
                    switch random.next() % 3 {
                    case 0: bytes.remove(at: position)
                    case 1: bytes.insert(byte, at: position)
                    default: bytes[position] = byte
                    }
                }
            }
            let starts = [0] + bytes.indices.filter { bytes[$0] == UInt8(ascii: "{") }.prefix(8)
            if let problem = disagreement(bytes, starts: starts) {
                Issue.record("\(problem)")
                return
            }
        }
    }
}
