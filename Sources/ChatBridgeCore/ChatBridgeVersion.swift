/// The version of chatbridge, as `--version` and the `User-Agent` header show it.
package enum ChatBridgeVersion {
    package static let current = "0.1.0"
}
