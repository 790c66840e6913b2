import Foundation
import ChatBridgeCore

/// Where a template's text lands, which decides how each value inserted into it is
/// escaped: exactly once, by the place, whatever the value holds.
///
/// | place | `{{chat.name}}` of `Jane "JJ" <Doe>\n` |
/// | --- | --- |
/// | ``text`` | `Jane "JJ" <Doe>` and the line break, as is |
/// | ``jsonString`` | `Jane \"JJ\" <Doe>\n`: write it between quotes in a JSON body |
/// | ``urlComponent`` | `Jane%20%22JJ%22%20%3CDoe%3E%0A` |
/// | ``headerValue`` | `Jane "JJ" <Doe>`: one line, at most 4 KiB |
///
/// An http sink renders its `url` as ``urlComponent``, its header values as
/// ``headerValue`` and its `body` as ``jsonString`` when the content type is JSON, else
/// as ``text``.
package enum TemplatePlace: Sendable, Hashable {
    /// Plain text: values as they are.
    case text
    /// Inside a JSON string: `"`, `\`, control characters, U+2028/U+2029 escaped.
    case jsonString
    /// A URL: everything but `A-Z a-z 0-9 - . _ ~` percent-encoded (UTF-8); a value of
    /// dots only (`.`, `..`) has its dots encoded too. Many receivers still read `%2E%2E`
    /// as "parent folder": an http sink does not send a URL with such a segment
    /// (``HTTPRenderError/dotSegment``).
    case urlComponent
    /// An HTTP header value: control characters and line separators as spaces, trimmed,
    /// cut to ``headerValueLimit`` bytes.
    case headerValue

    /// The most UTF-8 bytes one inserted header value keeps.
    package static let headerValueLimit = 4096

    /// `value` escaped for this place.
    package func escaped(_ value: String) -> String {
        switch self {
        case .text:
            return value
        case .jsonString:
            let quoted = JSONValue.string(value).compactString
            return String(quoted.dropFirst().dropLast())
        case .urlComponent:
            if !value.isEmpty, value.utf8.allSatisfy({ $0 == UInt8(ascii: ".") }) {
                return String(repeating: "%2E", count: value.utf8.count)
            }
            var out = ""
            out.reserveCapacity(value.utf8.count)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                     UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                     UInt8(ascii: "_"), UInt8(ascii: "~"):
                    out.unicodeScalars.append(Unicode.Scalar(byte))
                default:
                    out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
                }
            }
            return out
        case .headerValue:
            return TextLimit.prefix(DeliverySummary.oneLine(value), maxUTF8Bytes: Self.headerValueLimit)
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
