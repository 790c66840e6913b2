import AsyncHTTPClient
import Foundation
import ChatBridgeConfig
import Formats

/// Builds the sink a configuration entry describes.
///
/// Templates were validated when the configuration was loaded; should one still fail to
/// parse here, the sink cannot work as configured and every attempt at it is dead at once
/// with the reason (nothing is silently dropped or sent in a shape nobody asked for).
///
/// ```swift
/// let http = HTTPClient(eventLoopGroupProvider: .singleton,
///                       configuration: .init(redirectConfiguration: .disallow))
/// var sinks: [String: any DeliverySink] = [:]
/// for (name, sink) in configuration.sinks {
///     sinks[name] = makeSink(name: name, configuration: sink, httpClient: http)
/// }
/// ```
///
/// - Parameters:
///   - environment: chatbridge's own environment (the process's, unless a test says
///     otherwise); exec sinks pass on only what ``ExecEnvironment`` lets through.
///   - standardOutput: the file descriptor of the `stdout` sink.
package func makeSink(
    name: String,
    configuration: SinkConfiguration,
    httpClient: HTTPClient,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    standardOutput: Int32 = 1
) -> any DeliverySink {
    switch configuration.kind {
    case .standardOutput:
        return StdoutSink(fileDescriptor: standardOutput)
    case .webhook(let webhook):
        var template: DeliveryTemplate?
        if let text = webhook.template {
            do {
                template = try DeliveryTemplate(text)
            } catch {
                return MisconfiguredSink(reason: "sink \(name): \(error)")
            }
        }
        return WebhookSink(
            name: name,
            url: webhook.url,
            format: webhook.format,
            template: template,
            signer: webhook.secrets.isEmpty ? nil : WebhookSigner(secrets: webhook.secrets.map(\.value)),
            headers: webhook.headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) },
            timeout: webhook.timeout,
            httpClient: httpClient)
    case .http(let http):
        do {
            return try HTTPSink(name: name, configuration: http, httpClient: httpClient)
        } catch {
            return MisconfiguredSink(reason: "sink \(name): \(error)")
        }
    case .exec(let exec):
        let environment = ExecEnvironment.sealed(from: environment, for: exec)
        switch exec.command {
        case .shell(let script):
            return ExecSink(name: name, command: .shell(script), timeout: exec.timeout, environment: environment)
        case .arguments(let argv):
            do {
                return try ExecSink(name: name, argv: argv, timeout: exec.timeout, environment: environment)
            } catch {
                return MisconfiguredSink(reason: "sink \(name): \(error)")
            }
        }
    }
}

/// A sink whose configuration cannot work: every attempt is dead at once, with why.
struct MisconfiguredSink: DeliverySink {
    package let reason: String
    func deliver(_ request: DeliveryRequest) async -> DeliveryOutcome {
        .dead(status: nil, error: reason)
    }
}
