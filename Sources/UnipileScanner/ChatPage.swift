import ChatBridgeCore
import Foundation

/// One page of "List all chats" as the poll hands it over: the body exactly as received
/// and what ``ChatPageScanner`` found in it.
///
/// The items are not decoded. Compare ``ScannedItem/fingerprint`` with the stored fingerprint and
/// decode or copy out only what changed:
///
/// ```swift
/// try await client.fetchAllChats(query, fingerprintSeed: seed) { page in
///     for item in page.items where index.observe(key: item.key, fingerprint: item.fingerprint) != .unchanged {
///         let id = page.id(of: item)              // a String only now
///         let raw = page.rawData(of: item)        // to store
///         let chat = try page.decode(item)        // to diff
///     }
/// }
/// ```
package struct ChatPage: Sendable {
    /// The page's position in the poll, counted from 1.
    package let number: Int
    /// The response body as received.
    package let body: [UInt8]
    /// The items and cursor found in ``body``.
    package let scanned: ScannedPage

    package init(number: Int, body: [UInt8], scanned: ScannedPage) {
        self.number = number
        self.body = body
        self.scanned = scanned
    }

    /// The page's chats that were scanned in full, in page order.
    package var items: [ScannedItem] { scanned.items }

    /// The page's chats recognised by their fingerprint (when the poll asked for that).
    package var recognised: [RecognisedItem] { scanned.recognised }

    /// A recognised chat scanned in full after all: for a poll that must report it.
    package func item(_ recognised: RecognisedItem, fingerprintSeed: UInt64) throws(ChatPageScanError) -> ScannedItem {
        let result = body.withUnsafeBytes { buffer -> Result<ScannedItem, ChatPageScanError> in
            do throws(ChatPageScanError) {
                return .success(try ChatPageScanner.item(in: buffer, range: recognised.range, fingerprintSeed: fingerprintSeed))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The cursor of the next page, `nil` on the last one.
    package var cursor: String? { scanned.cursor }

    /// The chat id of `item`.
    package func id(of item: ScannedItem) -> String {
        item.id.text(in: body)
    }

    /// The `account_id` of `item`, when it is a string.
    package func accountID(of item: ScannedItem) -> String? {
        item.accountID?.text(in: body)
    }

    /// The `account_type` of `item`, when it is a string.
    package func accountType(of item: ScannedItem) -> String? {
        item.accountType?.text(in: body)
    }

    /// The raw JSON bytes of `item` (an object, as received).
    package func rawBytes(of item: ScannedItem) -> ArraySlice<UInt8> {
        body[item.range]
    }

    /// A copy of the raw JSON bytes of `item`, to store.
    package func rawData(of item: ScannedItem) -> Data {
        body.withUnsafeBytes { Data(UnsafeRawBufferPointer(rebasing: $0[item.range])) }
    }

    /// `item` decoded. The scanner validated the page, so this fails only when `item`
    /// does not come from this page.
    package func decode(_ item: ScannedItem) throws(JSONParseError) -> JSONValue {
        let result = body.withUnsafeBytes { buffer -> Result<JSONValue, JSONParseError> in
            do throws(JSONParseError) {
                return .success(try JSONValue.parse(UnsafeRawBufferPointer(rebasing: buffer[item.range])))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
