import Foundation
import Testing
import UnipileSimulator

@Suite("/_sim/ control API", .timeLimit(.minutes(1)))
struct ControlAPITests {
    @Test("a posted chat keeps unknown fields, their order and number forms, and is served unchanged")
    func postedChatRoundTrip() async throws {
        try await withSimulator(chats: 50) { simulator, client in
            let chat = #"{"object":"Chat","id":"sim-chat-1","account_id":"acc-x","account_type":"TELEGRAM","name":"Zoë \"Z\" <b>&amp;</b>","timestamp":"2030-01-01T00:00:00.000Z","unread_count":2,"archived":0,"muted_until":1.50e3,"x_unknown":{"nested":[1,2.50,true,null,"é\n"]},"pinned":0,"zz_last":-0.0}"#
            let posted = try await client.send("POST", "/_sim/chats", body: chat)
            #expect(posted.status == 200)
            #expect(posted.text == chat)

            // Newest timestamp of the workspace: it is the first item, byte for byte.
            let page = try await client.chats("limit=1")
            #expect(page.text.hasPrefix(#"{"object":"ChatList","items":["# + chat + "]"))
            #expect(try await client.send("GET", "/_sim/chats/sim-chat-1").text == chat)
            #expect(await simulator.state.chatJSON(id: "sim-chat-1") == chat)

            // Posting the same id replaces the chat.
            let replacement = #"{"id":"sim-chat-1","timestamp":null,"extra":"only this"}"#
            #expect(try await client.send("POST", "/_sim/chats", body: replacement).status == 200)
            #expect(await simulator.state.chatCount == 51)
            // A null timestamp lists after every chat that has one.
            let listed = try await client.allChats().items
            let position = try #require(ids(listed).firstIndex(of: "sim-chat-1"))
            #expect(position >= listed.filter { $0["timestamp"] is String }.count)
            #expect(try await client.send("GET", "/_sim/chats/sim-chat-1").text == replacement)
        }
    }

    @Test("PATCH merges fields in place, appends new ones, null sets null; DELETE removes")
    func patchAndDelete() async throws {
        try await withSimulator(chats: 5) { simulator, client in
            let original = #"{"id":"c-9","name":"Anna","unread_count":0,"archived":0,"muted_until":-1}"#
            try await simulator.state.upsert(chatJSON: original)

            let patched = try await client.send(
                "PATCH", "/_sim/chats/c-9", body: #"{"unread_count":4,"name":null,"new_field":[1]}"#)
            #expect(patched.status == 200)
            let expected = #"{"id":"c-9","name":null,"unread_count":4,"archived":0,"muted_until":-1,"new_field":[1]}"#
            #expect(patched.text == expected)
            let unread = try await client.allChats("unread=true").items
            #expect(ids(unread).contains("c-9"))

            try await simulator.state.patch(id: "c-9", fieldsJSON: #"{"id":"c-9","archived":1}"#)
            #expect(await simulator.state.chatJSON(id: "c-9")?.contains(#""archived":1"#) == true)

            #expect(try await client.send("DELETE", "/_sim/chats/c-9").status == 200)
            #expect(await simulator.state.chatJSON(id: "c-9") == nil)
            let all = try await client.allChats().items
            #expect(!ids(all).contains("c-9"))
            #expect(all.count == 5)
        }
    }

    @Test("the control API refuses bad input with error bodies", arguments: [
        Refusal("POST", "/_sim/chats", #"{"name":"no id"}"#, 400),
        Refusal("POST", "/_sim/chats", #"{"id":""}"#, 400),
        Refusal("POST", "/_sim/chats", #"{"id":7}"#, 400),
        Refusal("POST", "/_sim/chats", #"[{"id":"x"}]"#, 400),
        Refusal("POST", "/_sim/chats", #"{"id":"x""#, 400),
        Refusal("PATCH", "/_sim/chats/nope", #"{"name":"x"}"#, 404),
        Refusal("DELETE", "/_sim/chats/nope", nil, 404),
        Refusal("GET", "/_sim/chats/nope", nil, 404),
        Refusal("POST", "/_sim/faults", #"{"count":2}"#, 400),
        Refusal("POST", "/_sim/faults", #"{"status":200}"#, 400),
        Refusal("POST", "/_sim/faults", #"{"status":503,"malformed":true}"#, 400),
        Refusal("POST", "/_sim/faults", #"{"delay":"soon"}"#, 400),
        Refusal("POST", "/_sim/faults", #"{"status":503,"page":0}"#, 400),
        Refusal("POST", "/_sim/faults", #"{"status":503,"colour":"red"}"#, 400),
        Refusal("POST", "/_sim/reset", #"{"chats":-1}"#, 400),
        Refusal("POST", "/_sim/reset", #"{"seed":"abc"}"#, 400),
    ])
    func refusals(_ refusal: Refusal) async throws {
        let (method, path, body, status) = (refusal.method, refusal.path, refusal.body, refusal.status)
        try await withSimulator(chats: 3) { simulator, client in
            let answer = try await client.send(method, path, body: body)
            #expect(answer.status == status, "\(method) \(path) \(body ?? "") -> \(answer.text)")
            let error = try answer.object()
            #expect(error["status"] as? Int == status)
            #expect((error["type"] as? String)?.hasPrefix("errors/") == true)
            #expect((error["detail"] as? String)?.isEmpty == false)
            #expect(await simulator.state.chatCount == 3)
            #expect(await simulator.state.pendingFaults.isEmpty)
        }
    }

    @Test("PATCH cannot change a chat's id")
    func patchIDMismatch() async throws {
        try await withSimulator(chats: 3) { simulator, client in
            let id = try #require(await simulator.state.chatIDs().first)
            let answer = try await client.send("PATCH", "/_sim/chats/\(id)", body: #"{"id":"other"}"#)
            #expect(answer.status == 400)
            #expect(await simulator.state.chatJSON(id: id) != nil)
        }
    }

    @Test("ids with reserved characters work through percent-encoding")
    func percentEncodedIDs() async throws {
        try await withSimulator(chats: 1) { _, client in
            #expect(try await client.send("POST", "/_sim/chats", body: #"{"id":"a/b c?d"}"#).status == 200)
            let got = try await client.send("GET", "/_sim/chats/a%2Fb%20c%3Fd")
            #expect(got.status == 200)
            #expect(got.text == #"{"id":"a/b c?d"}"#)
        }
    }

    @Test("a status fault with count and page fails just those requests, with the seed's body")
    func statusFaultWithCountAndPage() async throws {
        try await withSimulator(chats: 30) { simulator, client in
            let added = try await client.send(
                "POST", "/_sim/faults", body: #"{"status": 503, "type": "errors/service_unavailable", "count": 2, "page": 2}"#)
            #expect(added.status == 200)
            #expect(await simulator.state.pendingFaults.count == 1)

            let first = try await client.chats("limit=10")
            #expect(first.status == 200)  // page 1 does not match
            let cursor = try #require(try first.cursor())
            for _ in 0..<2 {
                let failed = try await client.chats("limit=10&cursor=\(cursor)")
                #expect(failed.status == 503)
                let body = try failed.object()
                #expect(body["type"] as? String == "errors/service_unavailable")
                #expect(body["title"] as? String == "Service unavailable")
                #expect(body["detail"] as? String == "Please try again later.")
                #expect(body["status"] as? Int == 503)
            }
            let third = try await client.chats("limit=10&cursor=\(cursor)")
            #expect(third.status == 200)
            let page3Cursor = try #require(try third.cursor())
            #expect(try await client.chats("limit=10&cursor=\(page3Cursor)").status == 200)
            #expect(await simulator.state.pendingFaults.isEmpty)

            let stats = try await client.send("GET", "/_sim/stats")
            #expect(stats.text == #"{"requests":5,"by_status":{"200":3,"503":2}}"#)
        }
    }

    @Test("a fault without a type gets the status's usual error; 401 faults look like the real thing")
    func faultDefaultsAndAccountErrors() async throws {
        try await withSimulator(chats: 5) { simulator, client in
            await simulator.state.addFault(.error(status: 500))
            await simulator.state.addFault(.error(status: 401, type: "errors/disconnected_account"))
            _ = try await client.send("POST", "/_sim/faults", body: #"{"status":429,"retry_after":7}"#)

            // Requests refused for their key or parameters neither match nor use up a fault.
            #expect(try await client.chats(apiKey: "wrong").status == 401)
            #expect(try await client.chats("limit=0").status == 400)
            #expect(await simulator.state.pendingFaults.count == 3)

            let unexpected = try await client.chats()
            #expect(unexpected.status == 500)
            #expect(try unexpected.object()["type"] as? String == "errors/unexpected_error")
            let disconnected = try await client.chats()
            #expect(disconnected.status == 401)
            #expect(try disconnected.object()["title"] as? String == "Disconnected account")
            let limited = try await client.chats()
            #expect(limited.status == 429)
            #expect(limited.headers["retry-after"] == "7")
            #expect(try await client.chats().status == 200)
        }
    }

    @Test("a malformed fault answers 200 with a body that is not JSON")
    func malformedFault() async throws {
        try await withSimulator(chats: 40) { _, client in
            #expect(try await client.send("POST", "/_sim/faults", body: #"{"malformed": true}"#).status == 200)
            let broken = try await client.chats()
            #expect(broken.status == 200)
            #expect(!broken.body.isEmpty)
            #expect(throws: (any Error).self) { try JSONSerialization.jsonObject(with: broken.body) }
            #expect(try await client.chats().items().count == 40)
        }
    }

    @Test("a delay fault holds the answer back, then answers normally; faults can be cleared")
    func delayFault() async throws {
        try await withSimulator(chats: 5) { simulator, client in
            _ = try await client.send("POST", "/_sim/faults", body: #"{"delay": "400ms"}"#)
            let slow = try await client.chats()
            #expect(slow.status == 200)
            #expect(slow.elapsed >= 0.4)
            #expect(try slow.items().count == 5)
            #expect(await simulator.state.pendingFaults.isEmpty, "the delay fault was used up")
            let fast = try await client.chats()
            #expect(fast.status == 200)

            _ = try await client.send("POST", "/_sim/faults", body: #"{"delay": 0.3, "status": 504, "count": 3}"#)
            let timedOut = try await client.chats()
            #expect(timedOut.status == 504)
            #expect(timedOut.elapsed >= 0.3)
            #expect(try timedOut.object()["type"] as? String == "errors/request_timeout")
            let listed = try await client.send("GET", "/_sim/faults")
            #expect(listed.text == #"{"faults":[{"status":504,"type":"errors/request_timeout","delay":"300ms","count":2,"page":null}]}"#)
            #expect(try await client.send("DELETE", "/_sim/faults").status == 200)
            #expect(await simulator.state.pendingFaults.isEmpty)
            #expect(try await client.chats().status == 200)
        }
    }

    @Test("reset regenerates the workspace from the seed and clears faults and stats")
    func reset() async throws {
        try await withSimulator(chats: 20, seed: 1) { simulator, client in
            _ = try await client.chats()
            await simulator.state.addFault(.error(status: 503))
            let answer = try await client.send("POST", "/_sim/reset", body: #"{"chats": 7, "seed": 18446744073709551615}"#)
            #expect(answer.status == 200)
            #expect(await simulator.state.chatCount == 7)
            #expect(await simulator.state.seed == UInt64.max)
            #expect(await simulator.state.pendingFaults.isEmpty)
            #expect(await simulator.state.stats() == SimulatorStats())
            let expected = await SimulatorState(apiKey: "other", chats: 7, seed: .max).chatIDs()
            #expect(ids(try await client.allChats().items) == expected)
        }
    }

    @Test("--change-every changes the workspace on a timer")
    func changeEvery() async throws {
        try await withSimulator(chats: 100, seed: 4, changeEvery: .milliseconds(20)) { _, client in
            let initial = try await client.chats("limit=250").text
            var changed = false
            for _ in 0..<100 where !changed {
                try await Task.sleep(for: .milliseconds(50))
                changed = try await client.chats("limit=250").text != initial
            }
            #expect(changed)
        }
    }
}

/// A control request the simulator must refuse, and with which status.
struct Refusal: Sendable, CustomTestStringConvertible {
    var method: String
    var path: String
    var body: String?
    var status: Int

    init(_ method: String, _ path: String, _ body: String?, _ status: Int) {
        self.method = method
        self.path = path
        self.body = body
        self.status = status
    }

    var testDescription: String { "\(method) \(path) \(body ?? "") -> \(status)" }
}
