import Foundation
/// A value that must never be printed: an API key, a webhook URL, a signing secret.
///
/// Its description is `<redacted>`, so string interpolation, logging and `dump` cannot
/// leak it by accident; code that needs the value asks for ``value`` by name.
///
/// ```swift
/// let key = Secret("sk_live_...")
/// print("using \(key)")   // using <redacted>
/// request.headers.add(name: "X-API-KEY", value: key.value)
/// ```
package struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    package let value: String

    package init(_ value: String) { self.value = value }

    package var description: String { "<redacted>" }
    package var debugDescription: String { "<redacted>" }
    package var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
