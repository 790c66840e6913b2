import CEL
import Foundation
import Testing

/// A few groups of the shared conformance cases, run straight against the library (the
/// full file runs through `chatbridge eval --jsonl` and `shared/cel/run_conformance.py`).
/// Skipped when the file is not there, as on a CI machine without the shared folder.
private let casesPath = "/work/shared/cel/conformance-subset.jsonl"

/// Just enough JSON for the case file: numbers keep whether they had a fraction.
private indirect enum CaseJSON: Decodable {
    case null, bool(Bool), number(Double, isInteger: Bool), string(String), array([CaseJSON]), object([String: CaseJSON])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let i = try? container.decode(Int64.self) { self = .number(Double(i), isInteger: true) }
        else if let d = try? container.decode(Double.self) { self = .number(d, isInteger: false) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([CaseJSON].self) { self = .array(a) }
        else { self = .object(try container.decode([String: CaseJSON].self)) }
    }

    /// The CEL value; `type` ("int"/"double") decides for a top-level number.
    func celValue(type: String? = nil) -> CELValue {
        switch self {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let d, let isInteger):
            if type == "double" || (!isInteger && type != "int") { return .double(d) }
            return .int(Int64(d))
        case .string(let s): return .string(s)
        case .array(let items): return .list(items.map { $0.celValue() })
        case .object(let members): return .map(CELMap(members.mapValues { $0.celValue() }))
        }
    }
}

private struct ConformanceCase: Decodable {
    struct Expectation: Decodable {
        var value: CaseJSON?
        var type: String?
        var error: Bool?
    }
    var name: String
    var expr: String
    var bindings: [String: CaseJSON]?
    var expect: Expectation
}

@Suite("CEL conformance subset (sample)")
struct ConformanceSubsetTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: casesPath)))
    func sampleGroupsPass() throws {
        let text = try String(contentsOfFile: casesPath, encoding: .utf8)
        let decoder = JSONDecoder()
        let sampled = ["logic/", "macros/", "timestamps/", "string/", "integer_math/"]
        var checked = 0
        for line in text.split(separator: "\n") {
            let testCase = try decoder.decode(ConformanceCase.self, from: Data(line.utf8))
            // Cases with integral doubles in bindings cannot be told apart here; the sample has none.
            guard sampled.contains(where: testCase.name.hasPrefix), testCase.bindings == nil else { continue }
            checked += 1
            let result = try evaluate(testCase.expr)
            if testCase.expect.error == true {
                #expect(throws: CELEvaluationError.self, "\(testCase.name)") { try result.get() }
                continue
            }
            let expected = try #require(testCase.expect.value).celValue(type: testCase.expect.type)
            #expect(try result.get() == expected, "\(testCase.name): \(testCase.expr)")
        }
        #expect(checked > 150)
    }
}
