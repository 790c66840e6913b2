/// The simulator's control API under `/_sim/`: every endpoint, what it does and a `curl`
/// example. `GET /_sim/` answers this list as JSON, and `chatbridge simulate --help`
/// prints it, so the two cannot drift from the routes.
public enum SimulatorControlAPI {
    /// One endpoint of the control API.
    public struct Endpoint: Sendable, Hashable {
        public var method: String
        /// The path, with `{id}` for a chat id.
        public var path: String
        public var summary: String
        /// A `curl` command against `http://127.0.0.1:13111`.
        public var example: String
    }

    /// Every endpoint, in the order people need them.
    public static let endpoints: [Endpoint] = [
        Endpoint(
            method: "GET", path: "/_sim/", summary: "this list, as JSON",
            example: "curl -s http://127.0.0.1:13111/_sim/"),
        Endpoint(
            method: "POST", path: "/_sim/chats",
            summary: "add a chat, or replace the one with its id",
            example: #"curl -s -d '{"id": "c1", "name": "Acme"}' http://127.0.0.1:13111/_sim/chats"#),
        Endpoint(
            method: "GET", path: "/_sim/chats/{id}", summary: "one chat as the API shows it",
            example: "curl -s http://127.0.0.1:13111/_sim/chats/c1"),
        Endpoint(
            method: "PATCH", path: "/_sim/chats/{id}", summary: "change some fields of a chat",
            example: #"curl -s -X PATCH -d '{"unread_count": 4}' http://127.0.0.1:13111/_sim/chats/c1"#),
        Endpoint(
            method: "DELETE", path: "/_sim/chats/{id}", summary: "remove a chat",
            example: "curl -s -X DELETE http://127.0.0.1:13111/_sim/chats/c1"),
        Endpoint(
            method: "POST", path: "/_sim/faults",
            summary: #"make the next "count" list requests fail as described"#,
            example: #"curl -s -d '{"status": 503, "count": 2}' http://127.0.0.1:13111/_sim/faults"#),
        Endpoint(
            method: "GET", path: "/_sim/faults", summary: "the faults still waiting",
            example: "curl -s http://127.0.0.1:13111/_sim/faults"),
        Endpoint(
            method: "DELETE", path: "/_sim/faults", summary: "drop every waiting fault",
            example: "curl -s -X DELETE http://127.0.0.1:13111/_sim/faults"),
        Endpoint(
            method: "GET", path: "/_sim/stats", summary: "list requests served, by status",
            example: "curl -s http://127.0.0.1:13111/_sim/stats"),
        Endpoint(
            method: "POST", path: "/_sim/reset", summary: "a new generated workspace",
            example: #"curl -s -d '{"chats": 50, "seed": 7}' http://127.0.0.1:13111/_sim/reset"#),
    ]

    /// `GET /_sim/`: `{"endpoints": [{"method", "path", "summary", "example"}, ...]}`.
    static var listingJSON: SimulatorJSON {
        .object([.init("endpoints", .array(endpoints.map { endpoint in
            .object([
                .init("method", .string(endpoint.method)), .init("path", .string(endpoint.path)),
                .init("summary", .string(endpoint.summary)), .init("example", .string(endpoint.example)),
            ])
        }))])
    }
}
