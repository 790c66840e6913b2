// Benchmarks of finding where each chat of a page ends, the first step of recognising the
// chats of an unchanged poll by their bytes (`chatbridge-bench ends [PAGE_FILE...]`): each
// way ChatPageScanner can find an item's end, over every item of the pages, alone.
// Without files, the pages are the poll benchmark's rendered chats (100,000); with files,
// page bodies as saved from a server, e.g.
//   curl -s -H 'X-API-KEY: K' 'http://127.0.0.1:47001/api/v1/chats?limit=250' > page1.json
// Numbers go to standard output; nothing is asserted.
import Foundation
import UnipileScanner

func benchmarkItemEnds(files: [String]) throws {
    let pages: [[UInt8]]
    if files.isEmpty {
        pages = stride(from: 0, to: 100_000, by: 250).map { benchmarkPage(first: $0, count: 250, total: 100_000) }
    } else {
        pages = try files.map { path in
            guard let data = FileManager.default.contents(atPath: path) else { throw BenchmarkFailure("cannot read \(path)") }
            return Array(data)
        }
    }
    let items = try pages.map { try ChatPageScanner.scan($0, fingerprintSeed: 7).items.map(\.range) }
    let chats = items.reduce(0) { $0 + $1.count }
    let bytes = items.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
    guard chats > 0 else { throw BenchmarkFailure("the pages hold no chats") }
    print("item ends: \(chats) chats in \(pages.count) pages (\(files.isEmpty ? "rendered" : "from files")), \(bytes / chats) bytes per chat")

    /// Every item's end found with `find`, the fastest of five runs.
    func measure(_ name: String, _ find: (UnsafeRawBufferPointer, Int) -> Int?) throws {
        var best = Double.infinity
        var found = 0
        for _ in 0..<5 {
            found = 0
            best = min(best, seconds {
                for (page, ranges) in zip(pages, items) {
                    page.withUnsafeBytes { body in
                        for range in ranges where find(body, range.lowerBound) == range.upperBound { found += 1 }
                    }
                }
            })
        }
        guard found == chats else { throw BenchmarkFailure("\(name): \(found) of \(chats) item ends found") }
        print(String(
            format: "  %@: %.2f ms, %.1f ns per chat, %.2f GB/s", name, best * 1e3, best / Double(chats) * 1e9,
            Double(bytes) / best / 1e9))
    }
    try measure("byte by byte (the reference)") { ChatPageScanner.objectEndByteByByte(in: $0, from: $1) }
    try measure("64-byte blocks, vector masks") { ChatPageScanner.objectEnd(in: $0, from: $1, masks: .vector) }
    try measure("64-byte blocks, portable masks") { ChatPageScanner.objectEnd(in: $0, from: $1, masks: .portable) }
}
