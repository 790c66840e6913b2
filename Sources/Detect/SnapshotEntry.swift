import Foundation
/// A chat of the last complete snapshot, as much of it as a poll needs to compare.
package struct SnapshotEntry: Sendable, Hashable {
    package var fingerprint: UInt64
    /// Complete polls in a row that did not list this chat.
    package var missing: Int
    package init(fingerprint: UInt64, missing: Int) {
        self.fingerprint = fingerprint
        self.missing = missing
    }
}
