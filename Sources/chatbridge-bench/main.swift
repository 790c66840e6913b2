// Benchmarks, in release (numbers go to standard output; nothing is asserted):
//   swift run -c release chatbridge-bench [rules [RULES_FOLDER]]   the rules stage (RulesBenchmarks.swift)
//   swift run -c release chatbridge-bench poll [CHATS]             the poll's stages (PollStageBenchmarks.swift)
//   swift run -c release chatbridge-bench ends [PAGE_FILE...]      finding each chat's end (ItemEndBenchmarks.swift)
import Foundation

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "poll":
    try await benchmarkPoll(chats: arguments.dropFirst().first.flatMap(Int.init) ?? 100_000)
case "ends":
    try benchmarkItemEnds(files: Array(arguments.dropFirst()))
case "rules":
    try benchmarkRules(folder: arguments.dropFirst().first ?? "rules")
case nil:
    try benchmarkRules(folder: "rules")
case let other?:
    // A folder of rules, as before subcommands existed.
    try benchmarkRules(folder: other)
}
