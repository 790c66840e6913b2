import Crypto
import Foundation

/// Standard Webhooks headers (https://www.standardwebhooks.com): `webhook-id`,
/// `webhook-timestamp` and, when the sink has a secret, `webhook-signature`.
///
/// A receiver verifies a request with any Standard Webhooks library: it recomputes
/// HMAC-SHA256 over `"{id}.{timestamp}.{body}"` with the shared secret and compares.
///
/// ```swift
/// let signer = WebhookSigner(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
/// let signature = signer.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
///                                  timestamp: 1614265330, body: Array(#"{"test": 2432232314}"#.utf8))
/// // "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// ```
package struct WebhookSigner: Sendable {
    private let keys: [SymmetricKey]

    /// - Parameter secret: `whsec_` followed by base64 (the key is the decoded bytes), or
    ///   any other text (the key is its UTF-8 bytes). The configuration refuses a `whsec_`
    ///   secret whose rest is not base64; here such a secret is used as text, whole.
    package init(secret: String) {
        self.init(secrets: [secret])
    }

    /// Signs with every secret: while a receiver rotates, it accepts either signature.
    package init(secrets: [String]) {
        keys = secrets.map { secret in
            if secret.hasPrefix("whsec_"), let decoded = Data(base64Encoded: String(secret.dropFirst("whsec_".count))),
               !decoded.isEmpty
            {
                return SymmetricKey(data: decoded)
            }
            return SymmetricKey(data: Data(secret.utf8))
        }
    }

    /// One `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")) per secret,
    /// separated by spaces, as Standard Webhooks allows.
    package func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        var message = Data()
        message.append(contentsOf: Array("\(id).\(timestamp).".utf8))
        message.append(contentsOf: body)
        return keys.map { key in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: message, using: key)).base64EncodedString()
        }.joined(separator: " ")
    }

    /// The `webhook-id` of a delivery.
    ///
    /// The event id alone when no rule is involved (no rules configured: each event goes
    /// out once, to `stdout` or the one sink); `EVENTID.RULE.SINK` otherwise, because one
    /// event can go out several times (several rules, several sinks) and receivers
    /// deduplicate on this id. Both forms depend only on the outbox row, so the id is
    /// the same on every retry and every replay.
    package static func messageID(eventID: String, rule: String?, sink: String) -> String {
        guard let rule else { return eventID }
        return "\(eventID).\(rule).\(sink)"
    }

    /// The three headers for one attempt, in order: `webhook-id`, `webhook-timestamp`,
    /// and `webhook-signature` when `signer` is given.
    package static func headers(
        id: String, timestamp: Date, body: [UInt8], signer: WebhookSigner?
    ) -> [(name: String, value: String)] {
        let seconds = Int64(timestamp.timeIntervalSince1970.rounded(.down))
        var headers: [(name: String, value: String)] = [
            ("webhook-id", id),
            ("webhook-timestamp", String(seconds)),
        ]
        if let signer {
            headers.append(("webhook-signature", signer.signature(id: id, timestamp: seconds, body: body)))
        }
        return headers
    }
}
