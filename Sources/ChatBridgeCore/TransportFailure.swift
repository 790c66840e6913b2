/// A failure to reach a server, in words a person understands, naming the endpoint
/// (`host:port`) and never the rest of a URL (whose path or query may be a secret).
///
/// Network libraries describe these as their own types (`connection reset (error set):
/// Connection refused) (errno: 111)`); the Unipile client and the webhook sink both say
/// `connection refused by 127.0.0.1:1` instead.
///
/// ```swift
/// TransportFailure.describe(error, endpoint: "127.0.0.1:1")   // "connection refused by 127.0.0.1:1"
/// ```
package enum TransportFailure {
    /// What went wrong reaching `endpoint`, or `nil` when `error` is not a recognised
    /// network failure.
    package static func describe(_ error: any Error, endpoint: String) -> String? {
        let text = String(describing: error).lowercased()
        for (patterns, phrase) in phrases where patterns.contains(where: text.contains) {
            return phrase(endpoint)
        }
        return nil
    }

    private static let phrases: [([String], @Sendable (String) -> String)] = [
        (["connection refused", "connectionrefused", "errno: 111"], { "connection refused by \($0)" }),
        (["network is unreachable", "errno: 101"], { "network unreachable for \($0)" }),
        (["no route to host", "errno: 113"], { "no route to \($0)" }),
        (["host is down", "errno: 112"], { "host of \($0) is down" }),
        (["connection reset", "errno: 104"], { "connection reset by \($0)" }),
        (["nxdomain", "name or service not known", "no address", "dnsaerror", "dnsaaaaerror"],
         { "the host name of \($0) does not resolve" }),
        (["connecttimeout", "connect timeout", "timed out connecting"], { "timed out connecting to \($0)" }),
        (["certificate"], { "TLS certificate error with \($0)" }),
        (["ssl", "tls", "handshake"], { "TLS error with \($0)" }),
    ]

    /// `host:port` of an http(s) URL (the default port when none is written); `nil` for
    /// something that is not one.
    package static func endpoint(of url: String) -> String? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        let rest = url[schemeEnd.upperBound...]
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard !authority.isEmpty else { return nil }
        let hasPort = authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":")
        if hasPort { return String(authority) }
        return "\(authority):\(scheme == "https" ? 443 : 80)"
    }
}
