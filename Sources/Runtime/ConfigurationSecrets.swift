import ChatBridgeConfig
extension ChatBridgeConfiguration {
    /// Every secret value of the configuration (API keys, webhook URLs, signing secrets,
    /// header values, the PostgreSQL store's password) and what each `${...}` put into one
    /// (``ChatBridgeConfiguration/substitutedSecrets``), for the log redactor.
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
        return values + substitutedSecrets
    }
}
