#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A server could not listen because another process holds its address: which address,
/// and what to do about it.
///
/// ```swift
/// do { try await app.run() } catch {
///     throw AddressInUseError.recognizing(error, host: "127.0.0.1", port: 9464,
///                                         advice: "choose another http.listen port")
/// }
/// // cannot listen on 127.0.0.1:9464: the address is already in use by another process; choose another http.listen port
/// ```
package struct AddressInUseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `HOST:PORT`.
    package var address: String
    /// What the user can do, e.g. `choose another --port`.
    package var advice: String

    package init(host: String, port: Int, advice: String) {
        address = "\(host):\(port)"
        self.advice = advice
    }

    package var description: String {
        "cannot listen on \(address): the address is already in use by another process"
            + " (`ss -ltnp 'sport = :\(address.split(separator: ":").last ?? "")'` shows which); \(advice)"
    }

    /// `error` as an ``AddressInUseError`` when it is the socket layer's `EADDRINUSE`
    /// (SwiftNIO's `IOError` says `Address already in use (errno: 98)`), else `error`
    /// unchanged.
    package static func recognizing(_ error: any Error, host: String, port: Int, advice: String) -> any Error {
        let text = String(describing: error)
        let systemText = String(cString: strerror(EADDRINUSE))
        guard text.contains(systemText) || text.contains("errno: \(EADDRINUSE))") else { return error }
        return AddressInUseError(host: host, port: port, advice: advice)
    }
}
