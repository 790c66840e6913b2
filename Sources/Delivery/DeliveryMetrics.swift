import Store

/// Where the dispatcher reports what its attempts came to.
///
/// Delivery knows nothing of Prometheus or of the daemon around it: Runtime's
/// `BridgeMetrics` conforms, and a test can count outcomes with a small value of its own.
package protocol DeliveryMetrics: Sendable {
    /// One attempt at a row of `sink` ended with `result`.
    func recordDelivery(sink: String, result: DeliveryAttemptResult)

    /// A delivery of `sink` succeeded `seconds` after its event was detected.
    func recordDeliveryLatency(sink: String, seconds: Double)
}

extension DeliveryMetrics {
    package func recordDeliveryLatency(sink: String, seconds: Double) {}
}
