import AsyncHTTPClient
import Foundation
import GRDB
import Synchronization
import Testing
@testable import ChatBridgeConfig
@testable import ChatBridgeCore
@testable import Delivery
@testable import Detect
@testable import Formats
@testable import Rules
@testable import Runtime
@testable import Store
@testable import StoreSQLite
@testable import Unipile

// Batched reading and recording keep per-chat order; quiet hours and digests (rules.md),
// over a real store in a temp folder, a real receiver on 127.0.0.1 and injected clocks.

/// A fixed time of day, in UTC.
private func utc(_ text: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text)!
}

/// `from`–`to` in `zone`, as the rule file would say it.
private func quiet(_ from: String, _ to: String, _ zone: String = "UTC") -> QuietHours {
    QuietHours(
        fromMinute: QuietHours.parseTime(from)!, toMinute: QuietHours.parseTime(to)!,
        timeZone: TimeZone(identifier: zone)!)
}

/// A detected event of chat `chatID`, named `name`.
private func detected(_ id: String, chat chatID: String, name: String, at date: Date) -> Event {
    Event(
        id: id, type: .chatChanged, kinds: [.unreadIncreased], occurredAt: date, source: "main",
        accountType: "LINKEDIN", chatID: chatID,
        chat: .object(["id": .string(chatID), "name": .string(name), "unread_count": .int(1)]))
}

extension OutboxFixture {
    /// Writes events through the poll transaction's ``OutboxWriter``, with `routes` for
    /// every event, at `date`.
    func write(_ events: [Event], routes: [OutboxRoute], at date: Date) async throws -> PollApplication {
        try await store.pool.write { [store] db in
            let writer = OutboxWriter(db: db, router: { _ in routes }, now: date) { store.nextEventID(now: date) }
            var application = PollApplication()
            for event in events {
                try writer.write(event, orderingKey: "main/\(event.chatID ?? "")", into: &application)
            }
            return application
        }
    }
}

@Suite("Delivery: order under batching")
struct DeliveryOrderTests {
    @Test func perChatOrderHoldsWithBatchesRetriesAndConcurrency() async throws {
        let outbox = try OutboxFixture()
        let chats = 30, rounds = 5
        for round in 0..<rounds {
            for chat in 0..<chats { try await outbox.queued("e\(round)-\(chat)", chat: "c\(chat)") }
        }
        let inFlightChats = Mutex<Set<String>>([])
        let overlaps = Mutex(0)
        let failedOnce = Mutex<Set<String>>([])
        try await withReceiver({ request, _ in
            let id = request.json?["id"]?.stringValue ?? ""
            let chat = request.json?["chat_id"]?.stringValue ?? ""
            let overlapping = inFlightChats.withLock { !$0.insert(chat).inserted }
            if overlapping { overlaps.withLock { $0 += 1 } }
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...4)))
            if !overlapping { _ = inFlightChats.withLock { $0.remove(chat) } }
            // Every seventh event fails once: its chat must wait for its retry.
            if id.hasSuffix("7") || id.hasPrefix("e2-1"), failedOnce.withLock({ $0.insert(id).inserted }) {
                return receiverResponse(503)
            }
            return receiverResponse(200)
        }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store,
                sinks: ["hook": WebhookSink(name: "hook", url: Secret(url.absoluteString), httpClient: http)],
                policy: RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(30), maxBackoff: .milliseconds(60)),
                concurrency: 8, logger: quietLogger)
            let end = try await dispatcher.drain(timeout: .seconds(120))
            #expect(end == .nothingMoreDue)
            let requests = await log.requests
            #expect(await log.maxInFlight <= 8)
            // Per chat, deliveries arrive in detection order (a failed attempt is repeated
            // before anything later of its chat).
            var perChat: [String: [String]] = [:]
            for request in requests {
                guard let id = request.json?["id"]?.stringValue, let chat = request.json?["chat_id"]?.stringValue else { continue }
                if perChat[chat]?.last != id { perChat[chat, default: []].append(id) }
            }
            for chat in 0..<chats {
                #expect(perChat["c\(chat)"] == (0..<rounds).map { "e\($0)-\(chat)" }, "chat c\(chat): \(perChat["c\(chat)"] ?? [])")
            }
        }
        #expect(overlaps.withLock { $0 } == 0, "never two rows of one chat in flight")
        let records = try await outbox.records()
        #expect(records.count == chats * rounds && records.allSatisfy { $0.status == "delivered" })
        #expect(records.filter { $0.attempts == 2 }.count == failedOnce.withLock { $0.count })
    }

    @Test func stdoutLinesComeOutInOrderAndAreRecordedTogether() async throws {
        let outbox = try OutboxFixture()
        let count = 300
        for index in 0..<count { try await outbox.queued(String(format: "e%04d", index), chat: "c\(index % 5)", sink: "stdout", rule: nil) }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let reader = Task.detached { [read = fds[0]] in
            FileHandle(fileDescriptor: read, closeOnDealloc: true).readDataToEndOfFile()
        }
        let dispatcher = Dispatcher(
            queue: outbox.store, sinks: ["stdout": StdoutSink(fileDescriptor: fds[1])], policy: RetryPolicy(maxAttempts: 3),
            concurrency: 8, logger: quietLogger)
        let end = try await dispatcher.drain(timeout: .seconds(120))
        #expect(end == .nothingMoreDue)
        close(fds[1])
        let lines = String(decoding: await reader.value, as: UTF8.self).split(separator: "\n")
        #expect(lines.compactMap { try? JSONValue.parse(String($0))["id"]?.stringValue } == (0..<count).map { String(format: "e%04d", $0) })
        #expect(try await outbox.records().allSatisfy { $0.status == "delivered" && $0.attempts == 1 })
    }
}

@Suite("Delivery: quiet hours")
struct DeliveryQuietHoursTests {
    @Test func windowsWrapMidnightAndFollowTheirZone() {
        let night = quiet("22:00", "07:00")
        #expect(night.contains(utc("2026-11-24T23:30:00Z")) && night.contains(utc("2026-11-25T03:00:00Z")))
        #expect(!night.contains(utc("2026-11-25T07:00:00Z")) && !night.contains(utc("2026-11-24T21:59:00Z")))
        #expect(night.end(after: utc("2026-11-24T23:30:00Z")) == utc("2026-11-25T07:00:00Z"), "over midnight")
        #expect(night.end(after: utc("2026-11-25T03:00:00Z")) == utc("2026-11-25T07:00:00Z"), "after midnight")
        #expect(night.end(after: utc("2026-11-25T12:00:00Z")) == utc("2026-11-25T12:00:00Z"), "outside: at once")
        let office = quiet("09:00", "17:00", "Europe/Paris")  // UTC+1 in November
        #expect(office.end(after: utc("2026-11-25T09:30:00Z")) == utc("2026-11-25T16:00:00Z"))
    }

    @Test func aDueRowInsideTheWindowIsPostponedNotAttempted() async throws {
        let outbox = try OutboxFixture()
        let clock = utc("2026-11-24T23:30:00Z")
        let due = clock.addingTimeInterval(-60)
        for id in ["n1", "n2", "d1"] { try await outbox.event(id) }
        let night = try await outbox.delivery("n1", chat: "a", rule: "night", due: due)
        try await outbox.delivery("n2", chat: "a", rule: "night", due: due)
        try await outbox.delivery("d1", chat: "b", rule: "day", due: due)
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": WebhookSink(name: "hook", url: Secret(url.absoluteString), httpClient: http)],
                policy: RetryPolicy(maxAttempts: 3), concurrency: 4, quietHours: ["night": quiet("22:00", "07:00")],
                logger: quietLogger, now: { clock })
            // Nothing else can fall due before the window ends, hours after the drain's end.
            let end = try await dispatcher.drain(timeout: .seconds(120))
            #expect(end == .nothingMoreDue)
            #expect(await log.requests.compactMap { $0.json?["id"]?.stringValue } == ["d1"])
        }
        let records = try await outbox.records()
        let held = try #require(records.first { $0.id == night })
        #expect(held.status == "pending" && held.attempts == 0 && held.lastError == nil)
        #expect(held.nextAttemptAt == utc("2026-11-25T07:00:00Z"), "visible in `chatbridge deliveries`")
        #expect(try await outbox.store.nextAttemptDate(sink: "hook") == utc("2026-11-25T07:00:00Z"))
    }

    @Test func theSameRowGoesOutOnceTheWindowEnds() async throws {
        let outbox = try OutboxFixture()
        let clock = utc("2026-11-25T07:00:00Z")
        try await outbox.event("n1")
        try await outbox.delivery("n1", chat: "a", rule: "night", due: clock)
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store, sinks: ["hook": WebhookSink(name: "hook", url: Secret(url.absoluteString), httpClient: http)],
                policy: RetryPolicy(maxAttempts: 3), concurrency: 4, quietHours: ["night": quiet("22:00", "07:00")],
                logger: quietLogger, now: { clock })
            let end = try await dispatcher.drain(timeout: .seconds(120))
            #expect(end == .nothingMoreDue)
            #expect(await log.requests.count == 1)
        }
        #expect(try await outbox.records().map(\.status) == ["delivered"])
    }

    @Test func rowsWrittenInsideTheWindowAreDueAtItsEnd() async throws {
        let outbox = try OutboxFixture()
        let route = OutboxRoute(rule: "night", sinks: ["hook", "stdout"], quietHours: quiet("22:00", "07:00"))
        let inside = utc("2026-11-24T23:30:00Z")
        let written = try await outbox.write([detected("e1", chat: "a", name: "Ann", at: inside)], routes: [route], at: inside)
        #expect(written.deliveryCount == 2)
        let outside = utc("2026-11-25T12:00:00Z")
        _ = try await outbox.write([detected("e2", chat: "a", name: "Ann", at: outside)], routes: [route], at: outside)
        let records = try await outbox.store.deliveries()
        #expect(records.map(\.eventID) == ["e1", "e1", "e2", "e2"])
        #expect(records.prefix(2).allSatisfy { $0.nextAttemptAt == utc("2026-11-25T07:00:00Z") })
        #expect(records.suffix(2).allSatisfy { $0.nextAttemptAt == outside })
    }
}

@Suite("Delivery: digests")
struct DeliveryDigestTests {
    let opened = utc("2026-11-25T10:00:00Z")
    var route: OutboxRoute { OutboxRoute(rule: "hourly", sinks: ["hook"], digest: .seconds(600)) }

    @Test func explainFactsNameTheDigestAnEventJoinedAndItsDelivery() async throws {
        let outbox = try OutboxFixture()
        _ = try await outbox.write([detected("e1", chat: "a", name: "Ann", at: opened)], routes: [route], at: opened)
        let open = try await outbox.store.deliveryFacts(eventID: "e1")
        #expect(open.deliveries.isEmpty)
        let membership = try #require(open.digests.first)
        #expect(membership.rule == "hourly" && membership.sink == "hook" && membership.closesAt == opened.addingTimeInterval(600))
        let due = try #require(try await outbox.store.dueDeliveries(sink: "hook", now: opened.addingTimeInterval(600), excluding: [], limit: 10).first)
        #expect(membership.delivery?.eventID == due.eventID, "the digest's own delivery row")
        // What throttled a later match: the latest earlier row of the rule for the chat.
        #expect(try await outbox.store.latestDelivery(
            rule: "hourly", orderingKey: "main/a", atOrBefore: opened.addingTimeInterval(60), excludingEventID: "e2") == nil,
            "a digest's row is keyed by the digest, not the chat")
    }

    @Test func matchesWithinTheWindowBecomeOneDeliveryPerSink() async throws {
        let outbox = try OutboxFixture()
        let twoSinks = OutboxRoute(rule: "hourly", sinks: ["hook", "audit"], digest: .seconds(600))
        var written = 0
        for (index, name) in ["Ann", "Bob", "Cy"].enumerated() {
            let at = opened.addingTimeInterval(Double(index) * 60)
            written += try await outbox.write([detected("e\(index)", chat: "c\(index)", name: name, at: at)], routes: [twoSinks], at: at).deliveryCount
        }
        #expect(written == 2, "one row per sink, written by the first match")
        let rows = try await outbox.store.deliveries()
        #expect(rows.map(\.sink) == ["hook", "audit"])
        #expect(rows.allSatisfy { isUUIDv7($0.eventID) } && Set(rows.map(\.eventID)).count == 2, "each digest has an id of its own")
        #expect(rows.allSatisfy { $0.status == "pending" && $0.nextAttemptAt == opened.addingTimeInterval(600) && $0.rule == "hourly" })

        // Not due before the window closes; then one row with every match, in order.
        #expect(try await outbox.store.dueDeliveries(sink: "hook", now: opened.addingTimeInterval(599), excluding: [], limit: 10).isEmpty)
        let due = try await outbox.store.dueDeliveries(sink: "hook", now: opened.addingTimeInterval(600), excluding: [], limit: 10)
        let digest = try JSONValue.parse(try #require(due.first).eventJSON)
        #expect(digest["type"] == .string("digest") && digest["rule"] == .string("hourly") && digest["count"] == .int(3))
        #expect(digest["id"] == .string(rows[0].eventID), "the body carries the digest's id")
        #expect(digest["events"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["e0", "e1", "e2"])
        #expect(digest["events"]?.arrayValue?.first?["chat"]?["name"] == .string("Ann"))
    }

    @Test func aMatchAfterTheWindowOpensANewDigest() async throws {
        let outbox = try OutboxFixture()
        _ = try await outbox.write([detected("e1", chat: "a", name: "Ann", at: opened)], routes: [route], at: opened)
        let later = opened.addingTimeInterval(600)  // the window is [opened, opened + 10 min)
        _ = try await outbox.write([detected("e2", chat: "a", name: "Ann", at: later)], routes: [route], at: later)
        let rows = try await outbox.store.deliveries()
        #expect(rows.count == 2 && Set(rows.map(\.eventID)).count == 2)
        #expect(rows[1].nextAttemptAt == later.addingTimeInterval(600))
        let due = try await outbox.store.dueDeliveries(sink: "hook", now: later.addingTimeInterval(600), excluding: [], limit: 10)
        #expect(due.count == 2, "digests are not held back by each other or by chats")
        #expect(due.map { try? JSONValue.parse($0.eventJSON)["count"] } == [.int(1), .int(1)])
    }

    @Test func aDigestReadForDeliveryTakesNoMoreMatches() async throws {
        // A poll that detected a match before the window closed but commits after the
        // dispatcher read the digest: the match must not vanish into a sent digest.
        let outbox = try OutboxFixture()
        _ = try await outbox.write([detected("e1", chat: "a", name: "Ann", at: opened)], routes: [route], at: opened)
        let read = try await outbox.store.dueDeliveries(sink: "hook", now: opened.addingTimeInterval(600), excluding: [], limit: 10)
        #expect(read.count == 1)
        let late = opened.addingTimeInterval(590)
        _ = try await outbox.write([detected("e2", chat: "b", name: "Bob", at: late)], routes: [route], at: late)
        let rows = try await outbox.store.deliveries()
        #expect(rows.count == 2 && Set(rows.map(\.eventID)).count == 2, "e2 opened a digest of its own")
        let again = try await outbox.store.dueDeliveries(sink: "hook", now: late.addingTimeInterval(600), excluding: [], limit: 10)
        #expect(again.map { try? JSONValue.parse($0.eventJSON)["count"] } == [.int(1), .int(1)])
    }

    @Test func aDigestCanBeReplayedWithTheSameEvents() async throws {
        let outbox = try OutboxFixture()
        _ = try await outbox.write([detected("e1", chat: "a", name: "Ann", at: opened)], routes: [route], at: opened)
        let due = try #require(try await outbox.store.dueDeliveries(sink: "hook", now: opened.addingTimeInterval(600), excluding: [], limit: 10).first)
        try await outbox.store.record(.delivered(status: 200), deliveryID: due.id, attempts: 1, at: opened.addingTimeInterval(600))
        #expect(try await outbox.store.replay(eventID: due.eventID, now: opened.addingTimeInterval(700)) == 1)
        let again = try #require(try await outbox.store.dueDeliveries(sink: "hook", now: opened.addingTimeInterval(700), excluding: [], limit: 10).first)
        #expect(again.eventID == due.eventID && again.digestID == due.digestID && again.eventJSON == due.eventJSON)
        #expect(try JSONValue.parse(again.eventJSON)["id"] == .string(due.eventID), "the same id on a replay")
        #expect(try await outbox.store.deliveries(eventID: due.eventID).map(\.status) == ["delivered", "pending"],
                "the first delivery of the digest stays visible")
        await #expect(throws: ReplayError.self) { try await outbox.store.replay(eventID: "0190a0b0-0000-7000-8000-0000000000ff") }
    }

    @Test func aDigestClosingInQuietHoursWaitsForTheirEnd() async throws {
        let outbox = try OutboxFixture()
        let night = OutboxRoute(rule: "hourly", sinks: ["hook"], quietHours: quiet("22:00", "07:00"), digest: .seconds(600))
        let at = utc("2026-11-24T21:55:00Z")
        _ = try await outbox.write([detected("e1", chat: "a", name: "Ann", at: at)], routes: [night], at: at)
        #expect(try await outbox.store.deliveries().first?.nextAttemptAt == utc("2026-11-25T07:00:00Z"))
    }

    @Test func aDigestIsDeliveredAsOneRequestWithAStableID() async throws {
        let outbox = try OutboxFixture()
        let twoSinks = OutboxRoute(rule: "hourly", sinks: ["hook", "chat"], digest: .seconds(600))
        for (index, name) in ["Ann", "Bob"].enumerated() {
            let at = opened.addingTimeInterval(Double(index) * 60)
            _ = try await outbox.write([detected("e\(index)", chat: "c\(index)", name: name, at: at)], routes: [twoSinks], at: at)
        }
        let clock = opened.addingTimeInterval(601)
        let ids = Dictionary(uniqueKeysWithValues: try await outbox.store.deliveries().map { ($0.sink, $0.eventID) })
        try await withReceiver({ _, _ in receiverResponse(200) }) { url, http, log in
            let dispatcher = Dispatcher(
                queue: outbox.store,
                sinks: [
                    "hook": WebhookSink(name: "hook", url: Secret(url.absoluteString), httpClient: http),
                    "chat": WebhookSink(name: "chat", url: Secret(url.absoluteString), format: .slack, httpClient: http),
                ],
                policy: RetryPolicy(maxAttempts: 3), concurrency: 4,
                ruleTemplates: ["hourly": try DeliveryTemplate("{{count}} changes: {{#events}}{{chat.name}} {{/events}}")],
                logger: quietLogger, now: { clock })
            let end = try await dispatcher.drain(timeout: .seconds(120))
            #expect(end == .nothingMoreDue)
            let requests = await log.requests
            #expect(requests.count == 2)
            let json = try #require(requests.first { $0.headers["webhook-id"] == "\(ids["hook"]!).hourly.hook" })
            #expect(json.json?["type"] == .string("digest") && json.json?["count"] == .int(2))
            #expect(json.json?["id"] == .string(ids["hook"]!))
            #expect(json.json?["events"]?.arrayValue?.map { $0["id"] } == [.string("e0"), .string("e1")])
            let slack = try #require(requests.first { $0.headers["webhook-id"] == "\(ids["chat"]!).hourly.chat" })
            #expect(slack.json == .object(["text": .string("2 changes: Ann Bob ")]))
        }
        #expect(try await outbox.store.deliveries().allSatisfy { $0.status == "delivered" })
    }

    @Test func aDigestsDefaultTextAndCommandEnvironment() throws {
        let digest = json(#"""
            {"type":"digest","rule":"hourly","count":2,"events":[
              {"id":"e1","type":"chat.changed","kinds":["unread.increased"],"source":"main","chat_id":"a","chat":{"name":"Jane Doe"}},
              {"id":"e2","type":"chat.added","kinds":["chat.added"],"source":"main","chat_id":"b","chat":{"name":"Bob\nSmith"}}]}
            """#)
        #expect(DeliverySummary.text(for: digest) == "2 changes: Jane Doe (unread.increased), Bob Smith (chat.added)")
        let request = DeliveryRequest(eventID: "digest-7", event: digest, rule: "hourly", sink: "notify")
        let sink = ExecSink(name: "notify", command: .shell("true"), environment: [:])
        let environment = sink.environment(for: request)
        #expect(environment["CHATBRIDGE_EVENT_TYPE"] == "digest" && environment["CHATBRIDGE_EVENT_ID"] == "digest-7")
        #expect(environment["CHATBRIDGE_RULE"] == "hourly" && environment["CHATBRIDGE_CHAT_ID"] == "")
    }
}

/// Whether `text` is a UUIDv7 in its canonical form.
func isUUIDv7(_ text: String) -> Bool {
    let parts = text.split(separator: "-")
    return text.count == 36 && parts.map(\.count) == [8, 4, 4, 4, 12] && parts[2].first == "7"
        && text.allSatisfy { $0 == "-" || $0.isHexDigit }
}
