import ChatBridgeCore
import Foundation
import Yams

extension ConfigurationParser {
    /// What scale.md adds to the file: a PostgreSQL `store`, `instance` and `lease`.
    struct ScaleSettings {
        /// `store` as written (after `${VAR}`), when it was written.
        var storeText: String?
        var postgres: PostgresStoreURL?
        var instance: String?
        var lease: Duration = .seconds(30)
    }

    /// Reads `store` when it is a `postgres://` URL (a SQLite path is left to the path
    /// reader), `instance` and `lease`. Never echoes the URL: it may hold a password.
    mutating func readScaleSettings(_ top: YAMLMapping) -> ScaleSettings {
        var settings = ScaleSettings()
        if let entry = top["store"], let text = reader.readString(entry.value, path: "store") {
            settings.storeText = text
        }
        if let entry = top["store"], let text = settings.storeText, PostgresStoreURL.isPostgresURL(text) {
            do {
                settings.postgres = try PostgresStoreURL.parse(text, environment: environment)
            } catch {
                reader.report("store: \(error.message)", at: entry.value.mark)
            }
        }
        if let entry = top["instance"], !reader.isNull(entry.value) {
            if let name = reader.readNonEmptyString(entry.value, path: "instance", expected: "a name") {
                if name.count <= 100, name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) {
                    settings.instance = name
                } else {
                    reader.report("instance must be at most 100 characters without spaces or control characters", at: entry.value.mark)
                }
            }
        }
        if let entry = top["lease"] {
            if case .value(let text) = reader.scalarText(entry.value, path: "lease", expected: "a duration such as 30s"),
               let lease = reader.positiveDuration(text, path: "lease", at: entry.value.mark) {
                if lease < .seconds(1) {
                    reader.report("lease must be at least 1s, not '\(text)'", at: entry.value.mark)
                } else {
                    settings.lease = lease
                }
            }
        }
        return settings
    }
}
