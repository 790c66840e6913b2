/// An error answer in Unipile's shape: `{"status":503,"type":"errors/...","title":"...","detail":"..."}`.
public struct UnipileErrorBody: Error, Sendable, Equatable {
    public var status: Int
    public var type: String
    public var title: String
    public var detail: String

    public init(status: Int, type: String, title: String, detail: String) {
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
    }

    /// The compact JSON body, fields in the order above.
    var json: [UInt8] {
        SimulatorJSON.object([
            .init("status", .int(status)),
            .init("type", .string(type)),
            .init("title", .string(title)),
            .init("detail", .string(detail)),
        ]).serialized()
    }
}

/// Every error the seed document lists for "List all chats", with its status, title and detail.
public enum UnipileErrorCatalog {
    /// The errors of the seed, in its order, plus `errors/invalid_parameters` (400), which the
    /// real API answers for bad query parameters, and `errors/too_many_requests` (429), which
    /// it answers when rate-limited.
    public static let all: [UnipileErrorBody] = [
        .init(status: 400, type: "errors/invalid_parameters", title: "Invalid parameters",
              detail: "One or more request parameters are invalid or missing."),
        .init(status: 401, type: "errors/missing_credentials", title: "Missing credentials",
              detail: "Some credentials are necessary to perform the request."),
        .init(status: 401, type: "errors/multiple_sessions", title: "Multiple sessions",
              detail: "LinkedIn limits the use of multiple sessions on certain Recruiter accounts. This error restricts access to this route only, but causing a popup to appear in the user's browser, prompting them to choose a session, which can disconnect the current account. To avoid this error, use the cookie connection method."),
        .init(status: 401, type: "errors/wrong_account", title: "Wrong account",
              detail: "The provided credentials do not match the correct account."),
        .init(status: 401, type: "errors/invalid_credentials", title: "Invalid credentials",
              detail: "The provided credentials are invalid."),
        .init(status: 401, type: "errors/invalid_proxy_credentials", title: "Invalid proxy credentials",
              detail: "The provided proxy credentials are invalid."),
        .init(status: 401, type: "errors/invalid_imap_configuration", title: "Invalid IMAP configuration",
              detail: "The provided IMAP configuration is invalid."),
        .init(status: 401, type: "errors/invalid_smtp_configuration", title: "Invalid SMTP configuration",
              detail: "The provided SMTP configuration is invalid."),
        .init(status: 401, type: "errors/invalid_checkpoint_solution", title: "Invalid checkpoint solution",
              detail: "The checkpoint resolution did not pass successfully. Please retry."),
        .init(status: 401, type: "errors/checkpoint_error", title: "Checkpoint error",
              detail: "The checkpoint does not appear to be resolvable. Please try again and contact support if the problem persists."),
        .init(status: 401, type: "errors/expired_credentials", title: "Expired credentials",
              detail: "Invalid credentials. Please check your username and password and try again."),
        .init(status: 401, type: "errors/expired_link", title: "Expired link",
              detail: "This link has expired. Please return to the application and generate a new one."),
        .init(status: 401, type: "errors/insufficient_privileges", title: "Insufficient privileges",
              detail: "This resource seems to be out of your scopes."),
        .init(status: 401, type: "errors/disconnected_account", title: "Disconnected account",
              detail: "The account appears to be disconnected from the provider service."),
        .init(status: 401, type: "errors/disconnected_feature", title: "Disconnected feature",
              detail: "The service you're trying to reach appears to be disconnected."),
        .init(status: 403, type: "errors/insufficient_permissions", title: "Insufficient permissions",
              detail: "Valid authentication but insufficient permissions to perform the request."),
        .init(status: 403, type: "errors/account_restricted", title: "Account restricted",
              detail: "Access to this account has been restricted by the provider."),
        .init(status: 403, type: "errors/account_mismatch", title: "Account mismatch",
              detail: "This action cannot be done with your account."),
        .init(status: 403, type: "errors/unknown_authentication_context", title: "Unknown authentication context",
              detail: "An additional step seems necessary to complete login. Please connect to provider with your browser to find out more, then retry authentication."),
        .init(status: 403, type: "errors/session_mismatch", title: "Session mismatch",
              detail: "Token User id does not match client session id."),
        .init(status: 403, type: "errors/feature_not_subscribed", title: "Feature not subscribed",
              detail: "The requested feature has either not been subscribed or not been authenticated properly."),
        .init(status: 403, type: "errors/subscription_required", title: "Subscription required",
              detail: "The action you're trying to achieve requires a subscription to provider's services."),
        .init(status: 403, type: "errors/resource_access_restricted", title: "Resource access restricted",
              detail: "You don't have access to this resource."),
        .init(status: 403, type: "errors/action_required", title: "Action required",
              detail: "An additional step seems necessary. Complete authentication on the provider's native application and try again."),
        .init(status: 429, type: "errors/too_many_requests", title: "Too many requests",
              detail: "The rate limit was exceeded. Please slow down and retry later."),
        .init(status: 500, type: "errors/unexpected_error", title: "Unexpected error",
              detail: "Something went wrong. Simulated failure."),
        .init(status: 500, type: "errors/provider_error", title: "Provider error",
              detail: "The provider is experiencing operational problems. Please try again later."),
        .init(status: 500, type: "errors/authentication_intent_error", title: "Authentication intent error",
              detail: "The current authentication intent was killed after failure. Please start the process again from the beginning."),
        .init(status: 503, type: "errors/no_client_session", title: "No client session",
              detail: "No client session is currently running."),
        .init(status: 503, type: "errors/no_channel", title: "No channel",
              detail: "No channel to client session."),
        .init(status: 503, type: "errors/no_handler", title: "Handler missing",
              detail: "Handler missing for that request."),
        .init(status: 503, type: "errors/network_down", title: "Network down",
              detail: "Network is down on server side. Please wait a moment and retry."),
        .init(status: 503, type: "errors/service_unavailable", title: "Service unavailable",
              detail: "Please try again later."),
        .init(status: 504, type: "errors/request_timeout", title: "Request timed out",
              detail: "Request Timeout. Please try again, and if the issue persists, contact support."),
    ]

    /// The catalog entry for `type`, if the seed lists it.
    public static func entry(type: String) -> UnipileErrorBody? {
        all.first { $0.type == type }
    }

    /// The first catalog entry with `status` (e.g. 503 → `errors/no_client_session`), used
    /// when a fault names a status but no type. Prefers the most generic entry of the status.
    public static func defaultEntry(status: Int) -> UnipileErrorBody? {
        let preferred: [Int: String] = [
            400: "errors/invalid_parameters", 401: "errors/invalid_credentials",
            403: "errors/insufficient_permissions", 429: "errors/too_many_requests",
            500: "errors/unexpected_error", 503: "errors/service_unavailable", 504: "errors/request_timeout",
        ]
        return preferred[status].flatMap(entry(type:)) ?? all.first { $0.status == status }
    }

    /// The body for a fault or error of `status` and optional `type`: the catalog's title and
    /// detail when the type is known, a generic description otherwise. The status is always
    /// the one asked for.
    static func body(status: Int, type: String?) -> UnipileErrorBody {
        if let type {
            if var known = entry(type: type) {
                known.status = status
                return known
            }
            return UnipileErrorBody(status: status, type: type, title: "Simulated error",
                                    detail: "A failure injected through the simulator's control API.")
        }
        if let known = defaultEntry(status: status) { return known }
        return UnipileErrorBody(status: status, type: "errors/unexpected_error", title: "Simulated error",
                                detail: "A failure injected through the simulator's control API.")
    }

    static func invalidParameters(_ detail: String) -> UnipileErrorBody {
        UnipileErrorBody(status: 400, type: "errors/invalid_parameters", title: "Invalid parameters", detail: detail)
    }
}
