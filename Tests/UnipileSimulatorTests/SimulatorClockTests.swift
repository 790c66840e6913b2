import Foundation
import Synchronization
import Testing
@testable import UnipileSimulator

@Suite("Simulator times follow its clock")
struct SimulatorClockTests {
    /// Each chat's `timestamp` in Unix milliseconds (`nil` for a chat without one).
    func timestamps(_ state: SimulatorState) async throws -> [String: Int64?] {
        var result: [String: Int64?] = [:]
        for id in await state.chatIDs() {
            let json = try #require(await state.chatJSON(id: id))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            result[id] = (object["timestamp"] as? String).flatMap { ISOTimestamp.parse($0) }
        }
        return result
    }

    @Test func theNewestChatIsNowAndOffsetsAreFixedBySeed() async throws {
        let first = Date(timeIntervalSince1970: 1_800_000_000)
        let later = first.addingTimeInterval(86_400 * 3)
        let early = SimulatorState(apiKey: "k", chats: 40, seed: 5, clock: { first })
        let late = SimulatorState(apiKey: "k", chats: 40, seed: 5, clock: { later })
        let earlyTimes = try await timestamps(early)
        let lateTimes = try await timestamps(late)
        #expect(earlyTimes.values.compactMap { $0 }.max() == 1_800_000_000_000, "the newest chat is at the clock's now")
        #expect(Set(earlyTimes.keys) == Set(lateTimes.keys), "the same chats")
        for (id, time) in earlyTimes {
            #expect(lateTimes[id]!.map { $0 - 3 * 86_400_000 } == time, "the same offsets: \(id)")
        }
        // Without a clock, times stay fixed (tests and benchmarks compare pages byte for byte).
        let fixed = try await timestamps(SimulatorState(apiKey: "k", chats: 40, seed: 5))
        #expect(fixed.values.compactMap { $0 }.max() == ChatFactory.baseTime)
    }

    /// Changes made faster than time passes (the demo's every 2 s) must not carry the
    /// chats' times into the future: a rule on `timestamp(chat.timestamp) > now - …` would
    /// be true of everything.
    @Test func activityNeverRunsAheadOfTheClock() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let now = Mutex(start)
        let state = SimulatorState(apiKey: "k", chats: 40, seed: 5, clock: { now.withLock { $0 } })
        for tick in 1...30 {
            now.withLock { $0 = start.addingTimeInterval(Double(tick) * 2) }
            await state.applyRandomChanges(count: 3)
        }
        let newest = try #require(try await timestamps(state).values.compactMap { $0 }.max())
        // At most a millisecond a change past the clock, where changes outrun it.
        #expect(newest <= 1_800_000_060_000 + 90, "newest \(newest)")
        #expect(newest > 1_800_000_000_000, "time moved on")
    }
}
