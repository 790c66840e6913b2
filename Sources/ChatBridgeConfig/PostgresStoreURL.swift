import ChatBridgeCore
import Foundation

/// Where a PostgreSQL store lives: `store: postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=…`
/// (scale.md). `postgresql://` is accepted too.
///
/// The password is a ``Secret``: the URL's ``description`` shows `***` in its place, so
/// that logs, errors and `chatbridge status` can name the store without leaking it.
///
/// ```swift
/// let url = try PostgresStoreURL.parse("postgres://bridge:s3cret@db:5432/chatbridge?sslmode=require",
///                                      environment: [:])
/// print(url)   // postgres://bridge:***@db:5432/chatbridge?sslmode=require
/// ```
package struct PostgresStoreURL: Sendable, Hashable, CustomStringConvertible {
    /// libpq's `sslmode`, as far as chatbridge distinguishes it.
    package enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS when the server offers it (libpq's default, and `allow`).
        case prefer
        /// TLS or no connection; the certificate is not verified.
        case require
        /// TLS, the certificate verified against the system's roots (and `verify-ca`).
        case verifyFull = "verify-full"
    }

    package var host: String
    package var port: Int
    package var user: String
    /// From the URL, or `PGPASSWORD` when the URL has none.
    package var password: Secret?
    package var database: String
    package var tls: TLSMode

    package init(host: String, port: Int = 5432, user: String, password: Secret?, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Whether a `store` value names a PostgreSQL database rather than a SQLite file.
    package static func isPostgresURL(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// Why a `store` URL could not be used; never quotes the password.
    package struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    /// Reads a `postgres://` or `postgresql://` URL. The user defaults to `postgres`, the
    /// port to 5432, the database to the user's name; `PGPASSWORD` in `environment`
    /// supplies a password the URL does not hold.
    package static func parse(_ text: String, environment: [String: String]) throws(ParseError) -> PostgresStoreURL {
        guard isPostgresURL(text), let schemeEnd = text.range(of: "://") else {
            throw ParseError(message: "not a postgres:// URL")
        }
        // By hand rather than URLComponents: a password put in with ${VAR} may hold any
        // character, '@' and '/' among them; the userinfo ends at the last '@'.
        var rest = Substring(text[schemeEnd.upperBound...])
        var user = "postgres"
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                user = Self.decoded(userinfo[..<colon])
                password = Self.decoded(userinfo[userinfo.index(after: colon)...])
            } else {
                user = Self.decoded(userinfo)
            }
            if user.isEmpty { user = "postgres" }
        }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var host: Substring = rest
        var port = 5432
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { port = try Self.port(after.dropFirst()) }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            port = try Self.port(rest[rest.index(after: colon)...])
        }
        guard !host.isEmpty else { throw ParseError(message: "the postgres:// URL names no host") }
        var tls = TLSMode.prefer
        for item in query.split(separator: "&") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            let value = parts.count > 1 ? Self.decoded(parts[1]) : ""
            guard name == "sslmode" else {
                throw ParseError(message: "the postgres:// URL parameter '\(name)' is not supported (only sslmode)")
            }
            switch value {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer
            case "require": tls = .require
            case "verify-ca", "verify-full": tls = .verifyFull
            default:
                throw ParseError(message: "sslmode '\(value)' is not one of disable, allow, prefer, require, verify-ca, verify-full")
            }
        }
        password = password ?? environment["PGPASSWORD"]
        let database = Self.decoded(path)
        return PostgresStoreURL(
            host: String(host), port: port, user: user, password: password.map(Secret.init),
            database: database.isEmpty ? user : database, tls: tls)
    }

    /// Percent-decoded when that is valid, else as written (a password from `${VAR}`).
    private static func decoded(_ text: Substring) -> String {
        String(text).removingPercentEncoding ?? String(text)
    }

    private static func port(_ text: Substring) throws(ParseError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw ParseError(message: "the postgres:// URL's port '\(text)' is not a number in 1...65535")
        }
        return port
    }

    /// The URL with `***` for the password: what logs, errors and `status` show.
    package var description: String {
        var text = "postgres://" + user
        if password != nil { text += ":***" }
        let shownHost = host.contains(":") ? "[\(host)]" : host
        text += "@\(shownHost):\(port)/\(database)"
        if tls != .prefer { text += "?sslmode=\(tls.rawValue)" }
        return text
    }
}
