import Foundation
import Testing
import UnipileSimulator

@Suite("GET /api/v1/chats", .timeLimit(.minutes(1)))
struct ChatListAPITests {
    @Test("paging through an unchanging workspace lists every chat exactly once, in order")
    func pagingListsEveryChatOnce() async throws {
        try await withSimulator(chats: 1003, seed: 11) { simulator, client in
            let expected = await simulator.state.chatIDs()
            #expect(expected.count == 1003)
            for limit in [250, 37] {
                let (items, pages) = try await client.allChats("limit=\(limit)")
                #expect(pages == (1003 + limit - 1) / limit)
                #expect(ids(items) == expected)
                #expect(Set(ids(items)).count == 1003)
                for (a, b) in zip(items, items.dropFirst()) {
                    #expect(listedBefore(a, b), "\(a["id"]!) listed before \(b["id"]!)")
                }
            }
            // Default limit is 100.
            let first = try await client.chats()
            #expect(try first.items().count == 100)
            #expect(first.headers["content-type"]?.hasPrefix("application/json") == true)
        }
    }

    @Test("the last page has a null cursor, also when it is full")
    func lastPageCursorIsNull() async throws {
        try await withSimulator(chats: 20) { _, client in
            let answer = try await client.chats("limit=20")
            #expect(try answer.items().count == 20)
            #expect(try answer.cursor() == nil)
            #expect(answer.text.hasSuffix(#""cursor":null}"#))
        }
        try await withSimulator(chats: 0) { _, client in
            let answer = try await client.chats()
            #expect(answer.text == #"{"object":"ChatList","items":[],"cursor":null}"#)
        }
    }

    @Test("a cursor stays valid while chats change: the next page continues after its position")
    func cursorSurvivesChanges() async throws {
        try await withSimulator(chats: 300, seed: 5) { simulator, client in
            let before = await simulator.state.chatIDs()
            let first = try await client.chats("limit=10")
            let firstItems = try first.items()
            #expect(ids(firstItems) == Array(before.prefix(10)))
            let cursor = try #require(try first.cursor())

            // The chat the cursor points after disappears; the next page still continues
            // right after its sort position.
            let anchor = ids(firstItems).last!
            #expect(try await client.send("DELETE", "/_sim/chats/\(anchor)").status == 200)
            let second = try await client.chats("limit=10&cursor=\(cursor)")
            #expect(second.status == 200)
            #expect(ids(try second.items()) == Array(before[10..<20]))

            // Lots of changes later the same cursor still works and the rest of the chain
            // completes without error or repeats within itself.
            await simulator.state.applyRandomChanges(count: 200)
            var seen = Set<String>()
            var next: String? = cursor
            var pages = 0
            while let current = next, pages < 100 {
                let page = try await client.chats("limit=25&cursor=\(current)")
                try #require(page.status == 200, "\(page.text)")
                for id in ids(try page.items()) { #expect(seen.insert(id).inserted, "\(id) listed twice") }
                next = try page.cursor()
                pages += 1
            }
            #expect(next == nil)
            #expect(!seen.isEmpty)
        }
    }

    @Test("account_type, account_id, unread, before and after filter the listing")
    func filters() async throws {
        try await withSimulator(chats: 800, seed: 3) { _, client in
            let all = try await client.allChats("limit=250").items

            let linkedIn = try await client.allChats("account_type=LINKEDIN&limit=50").items
            #expect(!linkedIn.isEmpty)
            #expect(linkedIn.allSatisfy { $0["account_type"] as? String == "LINKEDIN" })
            #expect(ids(linkedIn) == ids(all.filter { $0["account_type"] as? String == "LINKEDIN" }))

            let accounts = Array(Set(all.compactMap { $0["account_id"] as? String })).sorted().prefix(2)
            #expect(accounts.count == 2)
            let byAccount = try await client.allChats("account_id=\(accounts.joined(separator: ","))&limit=40").items
            #expect(ids(byAccount) == ids(all.filter { accounts.contains($0["account_id"] as? String ?? "") }))

            let unread = try await client.allChats("unread=true&limit=100").items
            let read = try await client.allChats("unread=false&limit=100").items
            #expect(!unread.isEmpty && !read.isEmpty)
            #expect(unread.allSatisfy { ($0["unread_count"] as? Int ?? 0) > 0 })
            #expect(read.allSatisfy { ($0["unread_count"] as? Int ?? -1) == 0 })
            #expect(unread.count + read.count == all.count)

            // before/after are exclusive bounds on the timestamp.
            let dated = all.filter { $0["timestamp"] is String }
            let middle = dated[dated.count / 2]
            let pivot = try #require(middle["timestamp"] as? String)
            let older = try await client.allChats("before=\(pivot)&limit=250").items
            let newer = try await client.allChats("after=\(pivot)&limit=250").items
            let pivotMillis = timestampMilliseconds(middle)!
            #expect(ids(older) == ids(dated.filter { timestampMilliseconds($0)! < pivotMillis }))
            #expect(ids(newer) == ids(dated.filter { timestampMilliseconds($0)! > pivotMillis }))

            // Filters combine.
            let combined = try await client.allChats("account_type=WHATSAPP&unread=true").items
            #expect(ids(combined) == ids(all.filter {
                $0["account_type"] as? String == "WHATSAPP" && ($0["unread_count"] as? Int ?? 0) > 0
            }))
        }
    }

    @Test("limit bounds and bad parameters answer 400 with an error body", arguments: [
        "limit=0", "limit=251", "limit=abc", "limit=", "limit=-1", "account_type=EMAIL", "account_type=linkedin",
        "before=yesterday", "after=2025-13-01T00:00:00.000Z", "before=2025-11-23T12:13:20.000%2B01:00",
        "cursor=%21%21%21", "cursor=bm90LWEtY3Vyc29y", "cursor=", "unread=maybe", "account_id=",
    ])
    func badParameters(query: String) async throws {
        try await withSimulator(chats: 10) { _, client in
            let answer = try await client.chats(query)
            #expect(answer.status == 400, "\(query) -> \(answer.status)")
            let body = try answer.object()
            #expect(body["status"] as? Int == 400)
            #expect(body["type"] as? String == "errors/invalid_parameters")
            #expect((body["title"] as? String)?.isEmpty == false)
            #expect((body["detail"] as? String)?.isEmpty == false)
        }
    }

    @Test("limit 1 and 250 are accepted")
    func limitBounds() async throws {
        try await withSimulator(chats: 300) { _, client in
            #expect(try await client.chats("limit=1").items().count == 1)
            #expect(try await client.chats("limit=250").items().count == 250)
            let afterFirst = try await client.chats("limit=250&cursor=" + (client.chats("limit=250").cursor() ?? ""))
            #expect(try afterFirst.items().count == 50)
        }
    }

    @Test("a missing or wrong X-API-KEY answers 401 with the seed's types, never echoing the key")
    func authentication() async throws {
        try await withSimulator(chats: 10) { simulator, client in
            let missing = try await client.chats(apiKey: nil)
            #expect(missing.status == 401)
            let missingBody = try missing.object()
            #expect(missingBody["type"] as? String == "errors/missing_credentials")
            #expect(missingBody["status"] as? Int == 401)
            #expect(missingBody["detail"] as? String == "Some credentials are necessary to perform the request.")

            let wrong = try await client.chats(apiKey: "not-the-key-123")
            #expect(wrong.status == 401)
            #expect(try wrong.object()["type"] as? String == "errors/invalid_credentials")
            #expect(!wrong.text.contains("not-the-key-123"))
            #expect(!wrong.text.contains(testAPIKey))

            let prefix = try await client.chats(apiKey: String(testAPIKey.dropLast()))
            #expect(prefix.status == 401)

            let stats = await simulator.state.stats()
            #expect(stats.requests == 3)
            #expect(stats.byStatus == [401: 3])
        }
    }

    @Test("the same seed gives the same workspace; another seed another one")
    func determinismBySeed() async throws {
        let first = try await withSimulator(chats: 400, seed: 42) { _, client in try await client.chats("limit=250").text }
        let again = try await withSimulator(chats: 400, seed: 42) { _, client in try await client.chats("limit=250").text }
        let other = try await withSimulator(chats: 400, seed: 43) { _, client in try await client.chats("limit=250").text }
        #expect(first == again)
        #expect(first != other)

        // Random changes are deterministic too.
        let changesA = await SimulatorState(apiKey: "k", chats: 100, seed: 9).applyRandomChanges(count: 50)
        let changesB = await SimulatorState(apiKey: "k", chats: 100, seed: 9).applyRandomChanges(count: 50)
        #expect(changesA == changesB)
        #expect(Set(changesA.map(\.kind)).count > 3)
    }

    // Speed is measured by the benchmarks, not asserted here: this pages through a large
    // workspace with the largest page size.
    @Test("a 10,000-chat workspace pages through in 250-chat pages")
    func pagePerformance() async throws {
        try await withSimulator(chats: 10_000, seed: 2) { _, client in
            _ = try await client.chats("limit=250")  // warm up the connection
            var cursor: String? = nil
            var total = 0
            for _ in 0..<40 {
                let answer = try await client.chats("limit=250" + (cursor.map { "&cursor=" + $0 } ?? ""))
                try #require(answer.status == 200)
                total += try answer.items().count
                cursor = try answer.cursor()
                if cursor == nil { break }
            }
            #expect(total == 10_000)
        }
    }
}
