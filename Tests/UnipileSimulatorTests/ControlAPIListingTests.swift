import Foundation
import Testing
import UnipileSimulator

@Suite("/_sim/ lists its endpoints", .timeLimit(.minutes(1)))
struct ControlAPIListingTests {
    @Test func getSimListsEveryEndpointWithAnExample() async throws {
        try await withSimulator(chats: 1) { _, client in
            for path in ["/_sim", "/_sim/"] {
                let answer = try await client.send("GET", path)
                #expect(answer.status == 200, "\(path): \(answer.text)")
                let object = try JSONSerialization.jsonObject(with: Data(answer.text.utf8)) as? [String: Any]
                let endpoints = object?["endpoints"] as? [[String: Any]] ?? []
                #expect(endpoints.count == SimulatorControlAPI.endpoints.count, "\(path): \(answer.text)")
                let listed = Set(endpoints.compactMap { "\($0["method"] ?? "") \($0["path"] ?? "")" })
                for expected in ["POST /_sim/chats", "PATCH /_sim/chats/{id}", "POST /_sim/faults", "GET /_sim/stats", "POST /_sim/reset"] {
                    #expect(listed.contains(expected), "\(path) lists \(expected)")
                }
                #expect(endpoints.allSatisfy { ($0["example"] as? String)?.hasPrefix("curl ") == true })
            }
        }
    }
}
