import Foundation

/// The body shape of a webhook (delivery.md, "webhook"): the event itself, or a chat
/// message for Slack, Discord or Microsoft Teams carrying one line of TEXT.
///
/// Every body is built as a ``JSONValue`` and written by its writer, so it is valid JSON
/// whatever the chat contains; TEXT is escaped for its format exactly once (Slack's
/// `&amp;`, `&lt;`, `&gt;`), then as a JSON string.
///
/// ```swift
/// let text = DeliverySummary.text(for: event)          // or a template's rendering
/// let body = DeliveryFormat.slack.body(event: event, text: text)
/// // {"text":"LinkedIn · Jane &lt;3: 3 unread (was 0)"}
/// ```
package enum DeliveryFormat: String, Sendable, Hashable, CaseIterable {
    /// The event with `rule`.
    case json
    /// A Slack incoming-webhook message: `{"text": TEXT}`.
    case slack
    /// A Discord webhook message: `{"content": TEXT, "allowed_mentions": {"parse": []}}`.
    case discord
    /// A Teams Workflows message: an Adaptive Card with one TextBlock of TEXT.
    case teams
}
