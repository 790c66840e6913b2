import Foundation
import ChatBridgeConfig
extension ChatBridgeConfiguration {
    /// Every secret value of the configuration (API keys, webhook URLs, signing secrets,
    /// header values, the PostgreSQL store's password), for the log redactor.
    package var secretValues: [String] {
        var values: [String] = sources.map(\.apiKey.value)
        for sink in sinks.values {
            if case .webhook(let webhook) = sink.kind {
                values.append(webhook.url.value)
                values.append(contentsOf: webhook.secrets.map(\.value))
                values.append(contentsOf: webhook.headers.values.map(\.value))
            }
            if case .http(let http) = sink.kind {
                values.append(http.url.value)
                values.append(contentsOf: http.secrets.map(\.value))
                values.append(contentsOf: http.headers.values.map(\.value))
            }
        }
        if let password = postgresStore?.password { values.append(password.value) }
        return values
    }

    /// ``secretValues`` and every value the configuration file takes from outside (each
    /// `${NAME}` and `${file:PATH}`, ``ConfigEnvironmentSubstitution/substitutedValues(in:environment:)``):
    /// a token inside a URL or a body is not a configured secret of its own, and a
    /// receiver may echo it.
    package func secretValues(environment: [String: String]) -> [String] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return secretValues + ConfigEnvironmentSubstitution.substitutedValues(in: text, environment: environment)
    }
}
