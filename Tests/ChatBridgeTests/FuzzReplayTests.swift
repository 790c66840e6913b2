import Foundation
import Testing
@testable import chatbridge_fuzz

/// Every seed and every input the fuzzer ever found a problem with, through its target:
/// a finding, once fixed, stays fixed (`fuzz/regressions/TARGET/`).
@Suite("Fuzz corpus and regressions replayed")
struct FuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs(_ target: FuzzTarget) -> [URL] {
        ["fuzz/corpus", "fuzz/regressions"].flatMap { folder -> [URL] in
            let directory = root.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyInputPasses(target: FuzzTarget) throws {
        let inputs = Self.inputs(target)
        #expect(!inputs.isEmpty, "the seed corpus of \(target) is missing")
        for input in inputs {
            let data = try Data(contentsOf: input)
            data.withUnsafeBytes { target.run($0) }
        }
    }

    @Test func theScannerPropertyHoldsOnHostilePages() {
        // Hand-written edge cases beside the corpus: each either agrees or traps.
        let pages = [
            #"{"items":[{"id":""}]}"#, #"{"items":[{"id":"a"}],"cursor":""}"#, #"{"items":{}}"#,
            #"{"items":[{"id":"a"}],"items":[]}"#, #"{"cursor":"x"}"#, #"[]"#, #"{"items":[{"id":"a\u0000b"}]}"#,
            String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
            #"{"items":[{"id":"a"}]} x"#,
        ]
        for page in pages {
            Array(page.utf8).withUnsafeBytes { FuzzTarget.scanner.run($0) }
        }
    }
}
