import ChatBridgeConfig
import ChatBridgeCore
import Delivery
import Detect
import Formats
import Rules
import Runtime
import Store
import StoreSQLite
import Unipile
import Testing

@Suite("Config durations")
struct ConfigDurationTests {
    @Test("each unit and combinations", arguments: [
        ("500ms", Duration.milliseconds(500)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("2h", .seconds(7_200)),
        ("30d", .seconds(30 * 86_400)),
        ("1h30m", .seconds(5_400)),
        ("1m500ms", .milliseconds(60_500)),
        ("0s", .zero),
        (" 10s ", .seconds(10)),
    ])
    func parsesUnits(text: String, expected: Duration) throws {
        #expect(try ConfigDuration.parse(text) == expected)
    }

    @Test("a bare number says how to write it")
    func bareNumber() {
        #expect(throws: ConfigDurationError.self) { try ConfigDuration.parse("30") }
        do {
            _ = try ConfigDuration.parse("30")
        } catch {
            #expect(error.message.contains("write 30s, not 30"))
        }
    }

    @Test("malformed durations are refused", arguments: ["", "s", "30x", "1.5h", "-5s", "5 m", "h1", "30sec", "99999999999999999999d", "36500000d"])
    func refusesMalformed(text: String) {
        #expect(throws: ConfigDurationError.self) { try ConfigDuration.parse(text) }
    }

    @Test("format writes the largest units first and round-trips")
    func formats() throws {
        #expect(ConfigDuration.format(.seconds(5_400)) == "1h30m")
        #expect(ConfigDuration.format(.milliseconds(500)) == "500ms")
        #expect(ConfigDuration.format(.zero) == "0s")
        #expect(ConfigDuration.format(.seconds(30 * 86_400)) == "30d")
        for text in ["1d2h3m4s5ms", "10m", "250ms"] {
            #expect(ConfigDuration.format(try ConfigDuration.parse(text)) == text)
        }
    }
}
