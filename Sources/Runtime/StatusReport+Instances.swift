import ChatBridgeCore
import Foundation
import Store

extension StatusReport {
    /// `status --format json` with a shared store: `"instances"`, each live instance with
    /// the sources it holds and when each lease runs out, and `"unheld"`: sources no
    /// live instance holds.
    func withInstances(_ json: JSONValue) -> JSONValue {
        guard let instances, case .object(var object) = json else { return json }
        let live = Set(instances.instances.map(\.name))
        object["instances"] = .array(instances.instances.map { instance in
            .object([
                "name": .string(instance.name),
                "started_at": .string(Timestamp.iso8601(instance.startedAt)),
                "last_seen_at": .string(Timestamp.iso8601(instance.lastSeenAt)),
                "sources": .array(instances.leases.filter { $0.holder == instance.name && $0.expiresAt > instances.now }.map {
                    .object([
                        "name": .string($0.source), "lease_expires_at": .string(Timestamp.iso8601($0.expiresAt)),
                        "epoch": .int($0.epoch),
                    ])
                }),
            ])
        })
        object["unheld"] = .array(sources.map(\.name).filter { name in
            !instances.leases.contains { $0.source == name && $0.expiresAt > instances.now && live.contains($0.holder) }
        }.map(JSONValue.string))
        return .object(object)
    }

    /// Lines for people: one per live instance with its sources and lease expiry.
    var instanceLines: [String] {
        guard let instances else { return [] }
        var lines: [String] = []
        for instance in instances.instances {
            let held = instances.leases.filter { $0.holder == instance.name && $0.expiresAt > instances.now }
            let list = held.map { "\($0.source) (lease until \(Timestamp.iso8601($0.expiresAt)))" }
            lines.append("ok instance \(Self.printable(instance.name)): "
                + (list.isEmpty ? "no sources" : list.joined(separator: ", ")))
        }
        if instances.instances.isEmpty { lines.append("!! no live instance") }
        return lines
    }
}
