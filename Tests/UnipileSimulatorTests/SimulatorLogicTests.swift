import Foundation
import Testing
@testable import UnipileSimulator

@Suite("Simulator logic (no HTTP)")
struct SimulatorLogicTests {
    @Test("JSON keeps key order, number text, unknown structure and lone surrogates; refuses malformed input")
    func jsonRoundTrip() throws {
        let texts = [
            #"{"b":1,"a":[1.0,-2e-3,0,true,false,null],"c":{"z":"\"q\" \\ \u0001 é 🎉"}}"#,
            #"[]"#, #"{}"#, #""""#, #"-0.0"#,
        ]
        for text in texts {
            let value = try SimulatorJSON.parse(text)
            #expect(String(decoding: value.serialized(), as: UTF8.self) == text)
        }
        let escaped = try SimulatorJSON.parse(#""\u00e9\ud83c\udf89\/\n""#)
        #expect(escaped == .string("é🎉/\n"))
        // A lone surrogate escape in a value is served back as given (simulator.md), and reads
        // as U+FFFD; in a key it is refused.
        for lone in [#""\ud800""#, #""half \ud83d emoji""#, #""\udc00\ud83d\u0041""#] {
            let value = try SimulatorJSON.parse(lone)
            #expect(String(decoding: value.serialized(), as: UTF8.self) == lone)
        }
        #expect(try SimulatorJSON.parse(#""\udc00\ud83d\u0041""#).stringValue == "\u{FFFD}\u{FFFD}A")
        #expect(throws: SimulatorJSONError.self) { try SimulatorJSON.parse(#"{"\ud800":1}"#) }
        for bad in [#"{"a":}"#, "[1,]", "01", "1.", "nul", #"{"a":1} x"#, "\"a\u{1}\"", String(repeating: "[", count: 300)] {
            #expect(throws: SimulatorJSONError.self, "\(bad.prefix(20))") { try SimulatorJSON.parse(bad) }
        }
    }

    @Test("ISO timestamps format and parse as Unix milliseconds")
    func timestamps() {
        #expect(ISOTimestamp.format(milliseconds: 1_763_900_000_000) == "2025-11-23T12:13:20.000Z")
        #expect(ISOTimestamp.format(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(ISOTimestamp.format(milliseconds: 951_782_400_123) == "2000-02-29T00:00:00.123Z")
        #expect(ISOTimestamp.parse("2025-11-23T12:13:20.000Z") == 1_763_900_000_000)
        #expect(ISOTimestamp.parse("2025-11-23T12:13:20Z") == 1_763_900_000_000)
        #expect(ISOTimestamp.parse("2025-11-23T13:13:20.5+01:00") == 1_763_900_000_500)
        #expect(ISOTimestamp.parse("2025-11-23T13:13:20+01:00", requireUTC: true) == nil)
        #expect(ISOTimestamp.parse("2025-02-29T00:00:00Z") == nil)
        #expect(ISOTimestamp.parse("2025-11-23") == nil)
        for ms in stride(from: Int64(-86_400_000 * 400), to: 4_102_444_800_000, by: 7_777_777_777) {
            #expect(ISOTimestamp.parse(ISOTimestamp.format(milliseconds: ms)) == ms)
        }
    }

    @Test("cursors round-trip and anything else is refused")
    func cursors() throws {
        let cursor = ChatCursor(page: 3, after: ChatSortKey(timestamp: 1_763_900_000_000, id: "a|b"))
        #expect(try ChatCursor(decoding: cursor.encoded) == cursor)
        let nullTimestamp = ChatCursor(page: 2, after: ChatSortKey(timestamp: nil, id: "x"))
        #expect(try ChatCursor(decoding: nullTimestamp.encoded) == nullTimestamp)
        #expect(throws: ChatCursor.DecodingError.malformed) { try ChatCursor(decoding: "***") }
        var tampered = Array(cursor.encoded)
        tampered[6] = tampered[6] == "A" ? "B" : "A"
        #expect(throws: ChatCursor.DecodingError.self) { try ChatCursor(decoding: String(tampered)) }
        #expect(throws: ChatCursor.DecodingError.unknown) {
            try ChatCursor(decoding: Base64URL.encode(Array("c1|2|-|0000000000000000|x".utf8)))
        }
    }

    @Test("the generated workspace is realistic: every seed field, seven providers, all muted_until forms")
    func generatedWorkspaceIsRealistic() async throws {
        let state = SimulatorState(apiKey: "k", chats: 3000, seed: 77)
        var chats: [[String: Any]] = []
        for id in await state.chatIDs() {
            let json = try #require(await state.chatJSON(id: id))
            chats.append(try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]))
        }
        let seedFields = [
            "object", "id", "account_id", "account_type", "provider_id", "name", "type", "timestamp",
            "unread_count", "archived", "muted_until", "read_only", "disabledFeatures", "subject",
            "organization_id", "mailbox_id", "content_type", "folder", "pinned",
        ]
        for chat in chats {
            for field in seedFields { #expect(chat.keys.contains(field), "\(field) missing") }
            #expect(chat["object"] as? String == "Chat")
            #expect(chat["attendee_provider_id"] != nil || (chat["type"] as? Int) != 0)
        }
        // Field order follows the seed's example.
        let first = try #require(await state.chatJSON(id: await state.chatIDs()[0]))
        let positions = seedFields.compactMap { first.range(of: "\"\($0)\":")?.lowerBound }
        #expect(positions == positions.sorted())

        let types = Set(chats.compactMap { $0["account_type"] as? String })
        #expect(types == Set(UnipileAccountType.allCases.map(\.rawValue)))
        let linkedIn = chats.filter { $0["account_type"] as? String == "LINKEDIN" }
        #expect(linkedIn.contains { $0["content_type"] as? String == "inmail" })
        #expect(linkedIn.allSatisfy { ($0["folder"] as? [String])?.isEmpty == false })
        #expect(linkedIn.contains { ($0["folder"] as? [String])?.contains("INBOX_LINKEDIN_ORGANIZATION") == true })
        #expect(chats.contains { $0["name"] is NSNull })
        #expect(chats.contains { $0["timestamp"] is NSNull })
        #expect(chats.contains { $0["subject"] is String })

        let mutes = chats.map { $0["muted_until"] }
        #expect(mutes.contains { $0 is NSNull })
        #expect(mutes.contains { ($0 as? Int) == -1 })
        #expect(mutes.contains { $0 is String })
        #expect(mutes.contains { (($0 as? Int) ?? 0) > 100_000_000_000 })  // milliseconds
        #expect(mutes.contains { (($0 as? Int) ?? 0) > 0 && (($0 as? Int) ?? 0) < 100_000_000_000 })  // seconds
        #expect(chats.contains { ($0["unread_count"] as? Int ?? 0) > 0 })
        #expect(chats.contains { $0["archived"] as? Int == 1 })
        #expect(chats.contains { $0["pinned"] as? Int == 1 })
        #expect(chats.contains { $0["read_only"] as? Int == 1 })
    }

    @Test("random changes cover every kind and keep the listing sorted")
    func randomChanges() async throws {
        let state = SimulatorState(apiKey: "k", chats: 500, seed: 8)
        let before = await state.chatIDs()
        let changes = await state.applyRandomChanges(count: 600)
        #expect(changes.count == 600)
        #expect(Set(changes.map(\.kind)) == Set(SimulatedChange.Kind.allCases))
        let after = await state.chatIDs()
        #expect(after != before)
        let added = Set(changes.filter { $0.kind == .added }.map(\.chatID))
        #expect(!added.isEmpty && added.isDisjoint(with: Set(before)))

        // New messages put a chat at the front with a higher unread count.
        let moved = try #require(changes.last { $0.kind == .newMessage })
        let index = try #require(after.firstIndex(of: moved.chatID))
        let later = changes.suffix(from: changes.lastIndex { $0.kind == .newMessage }! + 1)
        let laterFront = later.filter { $0.kind == .newMessage || $0.kind == .added }.count
        #expect(index <= laterFront)

        // The kept order is the order of the sort keys.
        var keys: [ChatSortKey] = []
        for id in after {
            let json = try #require(await state.chatJSON(id: id))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            keys.append(ChatSortKey(timestamp: (object["timestamp"] as? String).flatMap { ISOTimestamp.parse($0) }, id: id))
        }
        #expect(keys == keys.sorted())
    }

    @Test("faults parse from JSON with their defaults")
    func faultParsing() throws {
        let fault = try SimulatedFault(json: Array(#"{"status": 503, "type": "errors/no_channel", "count": 2, "page": 3}"#.utf8))
        #expect(fault.count == 2)
        #expect(fault.page == 3)
        #expect(fault.failure == .error(UnipileErrorCatalog.entry(type: "errors/no_channel")!))
        let delayed = try SimulatedFault(json: Array(#"{"delay": "2s"}"#.utf8))
        #expect(delayed.delay == .seconds(2))
        #expect(delayed.failure == .none)
        #expect(delayed.count == 1 && delayed.page == nil)
        #expect(SimulatedFault.parseDelay(.string("250ms")) == .milliseconds(250))
        #expect(SimulatedFault.parseDelay(.string("1m")) == .seconds(60))
        #expect(SimulatedFault.parseDelay(.string("10m")) == nil)
        #expect(SimulatedFault.parseDelay(.number("1.5")) == .milliseconds(1500))
    }

    @Test("the simulator refuses non-loopback hosts")
    func loopbackOnly() async throws {
        let options = SimulatorOptions(host: "0.0.0.0", apiKey: "k", chats: 1)
        await #expect(throws: SimulatorError.nonLoopbackHost("0.0.0.0")) {
            try await UnipileSimulator.withRunning(options) { _ in }
        }
    }

    @Test("cancelling run stops the server promptly and frees the port")
    func cancellationStopsServer() async throws {
        let simulator = UnipileSimulator(
            options: SimulatorOptions(apiKey: testAPIKey, chats: 10, changeEvery: .seconds(60)), logger: quietLogger)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await simulator.run { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let client = TestClient(baseURL: "http://127.0.0.1:\(port)")
        #expect(try await client.chats().status == 200)

        let start = ContinuousClock.now
        task.cancel()
        _ = await task.result
        #expect(ContinuousClock.now - start < .seconds(20), "cancellation stops the server; it does not hang")
        await #expect(throws: (any Error).self) { _ = try await client.send("GET", "/_sim/stats", timeout: 2) }
    }
}
