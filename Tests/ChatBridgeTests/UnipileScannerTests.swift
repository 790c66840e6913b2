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
import UnipileScanner
import Foundation
import Testing

/// A page body around `items` (raw JSON texts) with `cursor` as written (a JSON literal).
private func pageText(_ items: [String], cursor: String? = "null") -> String {
    var text = #"{"object":"ChatList","items":["# + items.joined(separator: ",") + "]"
    if let cursor { text += #","cursor":"# + cursor }
    return text + "}"
}

/// Scans `text`; records an issue and returns `nil` when it is rejected.
private func scanned(
    _ text: String, seed: UInt64 = 7, sourceLocation: SourceLocation = #_sourceLocation
) -> ChatPage? {
    do {
        return try ChatPage(text, fingerprintSeed: seed)
    } catch {
        Issue.record("page rejected: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The error message for `text`; records an issue when it is accepted.
private func rejection(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        let page = try ChatPage(text, fingerprintSeed: 0)
        Issue.record("page accepted: \(page.ids)", sourceLocation: sourceLocation)
        return ""
    } catch {
        return error.description
    }
}

private func rejection(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> String {
    do {
        _ = try ChatPageScanner.scan(bytes, fingerprintSeed: 0)
        Issue.record("page accepted", sourceLocation: sourceLocation)
        return ""
    } catch {
        return error.description
    }
}

extension ChatPage {
    /// `text` scanned, as the first page of a poll.
    init(_ text: String, fingerprintSeed: UInt64) throws(ChatPageScanError) {
        let body = Array(text.utf8)
        self.init(number: 1, body: body, scanned: try ChatPageScanner.scan(body, fingerprintSeed: fingerprintSeed))
    }

    var ids: [String] { items.map(id(of:)) }
    var accountIDs: [String?] { items.map(accountID(of:)) }
    var keys: [ChatKey] { items.map(\.key) }
}

@Suite("Unipile page scanner")
struct UnipileScannerTests {
    @Test("finds each item, its account fields, exact byte range and fingerprint")
    func basicPage() throws {
        let first = #"{"object":"Chat","id":"chat_1","account_id":"acc_1","account_type":"LINKEDIN","unread_count":3}"#
        let second = #"{ "account_type" : "WHATSAPP" , "id" : "chat_2" , "name" : null }"#
        let text = "  " + pageText([first, second], cursor: #""next-page""#) + "\n"
        let bytes = Array(text.utf8)
        let page = try #require(scanned(text, seed: 99))

        #expect(page.cursor == "next-page")
        #expect(page.ids == ["chat_1", "chat_2"])
        #expect(page.accountID(of: page.items[0]) == "acc_1")
        #expect(page.accountType(of: page.items[0]) == "LINKEDIN")
        #expect(page.accountID(of: page.items[1]) == nil)
        #expect(page.accountType(of: page.items[1]) == "WHATSAPP")
        #expect(String(decoding: bytes[page.items[0].range], as: UTF8.self) == first)
        #expect(String(decoding: bytes[page.items[1].range], as: UTF8.self) == second)
        #expect(page.items[0].fingerprint == ChatFingerprint.fingerprint(of: Array(first.utf8), seed: 99))
        #expect(page.items[1].fingerprint == ChatFingerprint.fingerprint(of: Array(second.utf8), seed: 99))
    }

    @Test("the fingerprint depends on the seed and on every byte")
    func digestKeyed() throws {
        let item = #"{"id":"c","unread_count":1}"#
        let a = try #require(scanned(pageText([item]), seed: 1)).items[0].fingerprint
        let b = try #require(scanned(pageText([item]), seed: 2)).items[0].fingerprint
        let c = try #require(scanned(pageText([#"{"id":"c","unread_count":2}"#]), seed: 1)).items[0].fingerprint
        #expect(a != b)
        #expect(a != c)
    }

    @Test("cursor: null, absent, or a string with escapes")
    func cursors() throws {
        #expect(try #require(scanned(pageText([], cursor: "null"))).cursor == nil)
        #expect(try #require(scanned(pageText([], cursor: nil))).cursor == nil)
        #expect(try #require(scanned(#"{"cursor":"a\/b\"c\u00e9","items":[]}"#)).cursor == "a/b\"cé")
        #expect(try #require(scanned(#"{"items":[],"cursor":"first","cursor":null}"#)).cursor == nil)
        #expect(try #require(scanned(#"{"items":[]}"#)).items.isEmpty)
    }

    @Test("escaped member strings are decoded, escaped keys recognized")
    func escapes() throws {
        let item = #"{"\u0069d":"a\"b\\c\/d\u00e9\ud83d\ude00\n","account_id":"acc\t1","acc\u006funt_type":"LINKED\u0049N"}"#
        let page = try #require(scanned(pageText([item])))
        #expect(page.id(of: page.items[0]) == "a\"b\\c/dé😀\n")
        #expect(page.accountID(of: page.items[0]) == "acc\t1")
        #expect(page.accountType(of: page.items[0]) == "LINKEDIN")
        // The same decoding as JSONValue, lone surrogates included.
        let lone = #"{"id":"x\ud83dy\ude00z"}"#
        let parsed = try JSONValue.parse(lone)
        let lonePage = try #require(scanned(pageText([lone])))
        #expect(lonePage.id(of: lonePage.items[0]) == parsed["id"]?.stringValue)
    }

    @Test("raw UTF-8 content is kept byte for byte")
    func unicode() throws {
        let item = #"{"id":"会話-😀","name":"Zoë Ångström 🇫🇷 \u2028","account_type":"TELEGRAM"}"#
        let text = pageText([item])
        let page = try #require(scanned(text))
        #expect(page.id(of: page.items[0]) == "会話-😀")
        #expect(Array(Array(text.utf8)[page.items[0].range]) == Array(item.utf8))
    }

    @Test("ids nested in objects, arrays and strings are not the item's id")
    func nestedIDs() throws {
        let item = """
            {"attendee":{"id":"nested","account_id":"nested_acc"},"list":[{"id":"in-array"},["id"]],\
            "name":"{\\"id\\":\\"fake\\"}]},{","id":"real","extra":{"deep":[[{"account_type":"NO"}]]}}
            """
        let page = try #require(scanned(pageText([item])))
        #expect(page.items.count == 1)
        #expect(page.id(of: page.items[0]) == "real")
        #expect(page.accountID(of: page.items[0]) == nil)
        #expect(page.accountType(of: page.items[0]) == nil)

        let onlyNested = #"{"attendee":{"id":"nested"},"list":[{"id":"x"}],"note":"\"id\":\"y\""}"#
        #expect(rejection(pageText([#"{"id":"ok"}"#, onlyNested])) == #"item 2: chat has no string "id""#)
    }

    @Test("a NUL in an id is refused: read as C text, it would make two chats one")
    func nulInIdentifiers() throws {
        #expect(rejection(pageText([#"{"id":"victim\u0000x"}"#])) == #"item 1: chat "id" holds a NUL character (\u0000)"#)
        #expect(rejection(pageText([#"{"id":"ok"}"#, #"{"id":"b","account_id":"acc\u0000"}"#]))
            == #"item 2: chat "account_id" holds a NUL character (\u0000)"#)
        #expect(rejection(pageText([#"{"id":"c","account_type":"\u0000"}"#])) == #"item 1: chat "account_type" holds a NUL character (\u0000)"#)
        // Other escapes are text like any other, and a NUL elsewhere in the chat is content.
        let page = try #require(scanned(pageText([#"{"id":"caf\u00e9\n","name":"a\u0000b"}"#])))
        #expect(page.id(of: page.items[0]) == "café\n")
    }

    @Test("strings with braces, brackets and quotes do not end the item")
    func bracesInStrings() throws {
        let tricky = #"{"id":"t","name":"}}]]\"{[","subject":"\\\"","folder":["]","}","\\"]}"#
        let next = #"{"id":"after"}"#
        let text = pageText([tricky, next])
        let page = try #require(scanned(text))
        #expect(page.ids == ["t", "after"])
        #expect(String(decoding: Array(text.utf8)[page.items[0].range], as: UTF8.self) == tricky)
    }

    @Test("a later duplicate member wins, as in JSONValue")
    func duplicates() throws {
        let page = try #require(scanned(pageText([#"{"id":"first","id":"second","account_id":"a","account_id":null}"#])))
        #expect(page.id(of: page.items[0]) == "second")
        #expect(page.accountID(of: page.items[0]) == nil)
        #expect(rejection(pageText([#"{"id":"a","id":null}"#])) == #"item 1: chat has no string "id""#)
    }

    @Test(
        "an item without a usable string id is named by its position",
        arguments: [
            #"{"name":"no id"}"#, #"{"id":null}"#, #"{"id":17}"#, #"{"id":""}"#, #"{"id":["x"]}"#,
            #"{"id":{"id":"x"}}"#, #"{"ID":"x"}"#, "{}",
        ])
    func missingID(item: String) {
        let items = (1...16).map { #"{"id":"c\#($0)"}"# } + [item, #"{"id":"c18"}"#]
        #expect(rejection(pageText(items)) == #"item 17: chat has no string "id""#)
    }

    @Test("an item that is not an object", arguments: [#""chat""#, "null", "3", "[]", #"[{"id":"x"}]"#, "true"])
    func itemNotObject(item: String) {
        #expect(rejection(pageText([#"{"id":"a"}"#, item])) == "item 2: chat is not a JSON object")
    }

    @Test(
        "bodies that are not JSON are rejected with the byte offset",
        arguments: [
            ("", "invalid JSON at byte 0: unexpected end of input"),
            ("   ", "invalid JSON at byte 3: unexpected end of input"),
            (#"{"items":[{"id":"a"}"#, "invalid JSON at byte 20: unexpected end of input in an array"),
            (#"{"items":[{"id":"a"},]}"#, "item 2: invalid JSON at byte 21: unexpected character"),
            (#"{"items":[]} x"#, "invalid JSON at byte 13: unexpected text after the value"),
            (#"{"items":[]}{}"#, "invalid JSON at byte 12: unexpected text after the value"),
            (#"{items:[]}"#, "invalid JSON at byte 1: expected a string key"),
            (#"{'items':[]}"#, "invalid JSON at byte 1: expected a string key"),
            (#"{"items":[{"id":"a\x"}]}"#, "item 1: invalid JSON at byte 18: invalid escape"),
            (#"{"items":[{"id":"a\u12G4"}]}"#, "item 1: invalid JSON at byte 18: invalid \\u escape"),
            (#"{"items":[{"id":"a","n":01}]}"#, "item 1: invalid JSON at byte 25: expected ',' or '}'"),
            (#"{"items":[{"id":"a","n":1.}]}"#, "item 1: invalid JSON at byte 26: invalid number"),
            (#"{"items":[{"id":"a","n":-}]}"#, "item 1: invalid JSON at byte 25: invalid number"),
            (#"{"items":[{"id":"a","n":1e}]}"#, "item 1: invalid JSON at byte 26: invalid number"),
            (#"{"items":[{"id":"a","n":1e400}]}"#, "item 1: invalid JSON at byte 24: number out of range"),
            (#"{"items":[{"id":"a","n":NaN}]}"#, "item 1: invalid JSON at byte 24: unexpected character"),
            (#"{"items":[{"id":"a","n":tru}]}"#, "item 1: invalid JSON at byte 24: invalid literal"),
            (#"{"items":[{"id":"a" "n":1}]}"#, "item 1: invalid JSON at byte 20: expected ',' or '}'"),
            (#"{"items":[{"id":"a","n"1}]}"#, "item 1: invalid JSON at byte 23: expected ':'"),
            (#"{"items":[{"id":"abc"#, "item 1: invalid JSON at byte 16: unterminated string"),
            ("{\"items\":[{\"id\":\"a\tb\"}]}", "item 1: invalid JSON at byte 18: control character in a string"),
            (#"{"items":[],"x":[1,2}"#, "invalid JSON at byte 20: expected ',' or ']'"),
        ])
    func invalidJSON(text: String, message: String) {
        #expect(rejection(text) == message)
    }

    @Test("invalid UTF-8 is not JSON")
    func invalidUTF8() {
        let prefix = Array(#"{"items":[{"id":"a","name":""#.utf8)
        let suffix = Array(#""}]}"#.utf8)
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x80]] {
            #expect(rejection(bytes: prefix + bad + suffix).contains("invalid UTF-8"))
        }
        // Valid sequences of every length pass.
        let good: [UInt8] = [0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80]
        #expect((try? ChatPageScanner.scan(prefix + good + suffix, fingerprintSeed: 0)) != nil)
    }

    @Test(
        "a page of the wrong shape says what is wrong",
        arguments: [
            ("[]", "the page is not a JSON object"),
            (#""items""#, "the page is not a JSON object"),
            ("{}", #"the page has no "items" array"#),
            (#"{"object":"ChatList","cursor":null}"#, #"the page has no "items" array"#),
            (#"{"items":{"id":"a"}}"#, #""items" is not an array"#),
            (#"{"items":null}"#, #""items" is not an array"#),
            (#"{"items":[],"cursor":5}"#, #""cursor" is neither a string nor null"#),
            (#"{"items":[],"cursor":{"next":"x"}}"#, #""cursor" is neither a string nor null"#),
            (#"{"items":[],"cursor":""}"#, #""cursor" is an empty string"#),
        ])
    func wrongShape(text: String, message: String) {
        #expect(rejection(text) == message)
    }

    @Test("nesting inside an item is limited exactly as JSONValue limits it")
    func nestingDepth() throws {
        func item(depth: Int) -> String {
            // The item object is level 1; `depth` levels in all.
            #"{"id":"deep","x":"# + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
        }
        let deepest = item(depth: ChatPageScanner.maxNestingDepth)
        #expect((try? JSONValue.parse(deepest)) != nil)
        let deepPage = try #require(scanned(pageText([deepest])))
        #expect(deepPage.id(of: deepPage.items[0]) == "deep")

        let tooDeep = item(depth: ChatPageScanner.maxNestingDepth + 1)
        #expect((try? JSONValue.parse(tooDeep)) == nil)
        #expect(rejection(pageText([tooDeep])).contains("nested too deeply"))

        // A hostile body of nothing but brackets fails, and does not exhaust the stack.
        #expect(rejection(String(repeating: "[", count: 200_000)).contains("invalid JSON"))
        #expect(rejection(#"{"items":[],"x":"# + String(repeating: "{\"a\":", count: 100_000)).contains("nested too deeply"))
    }

    @Test("accepts exactly what JSONValue accepts, on thousands of mutated pages")
    func differentialAgainstJSONValue() throws {
        let items = [
            #"{"object":"Chat","id":"c1","account_id":"a1","account_type":"LINKEDIN","name":"A \"b\" {c}","unread_count":3,"folder":["INBOX"],"muted_until":-1,"x":[1.5e3,true,false,null,{}]}"#,
            #"{"id":"c\u00e9","account_id":null,"nested":{"id":"no"},"timestamp":"2025-01-01T00:00:00.000Z","n":-0.25}"#,
        ]
        let original = Array(pageText(items, cursor: #""cur\/sor""#).utf8)
        let alphabet = Array(#"{}[],:"\ 0123456789.-+eEtrufalsnid"#.utf8)
        var random = UnipileTestRandom(seed: 0x5EED)
        var accepted = 0
        for _ in 0..<4_000 {
            var bytes = original
            for _ in 0..<Int(random.next() % 3 + 1) {
                let position = Int(random.next() % UInt64(bytes.count))
                switch random.next() % 3 {
                case 0: bytes.remove(at: position)
                case 1: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: position)
                default: bytes[position] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                }
                if bytes.isEmpty { bytes = original }
            }
            let expected = Self.expectedPage(bytes)
            let actual = (try? ChatPageScanner.scan(bytes, fingerprintSeed: 1)).map {
                ChatPage(number: 1, body: bytes, scanned: $0)
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(actual?.ids == expected?.ids, "\(text)")
            #expect(actual?.accountIDs == expected?.accountIDs, "\(text)")
            #expect(actual?.keys == expected?.ids.map(ChatKey.init(id:)), "\(text)")
            #expect(actual?.cursor == expected?.cursor, "\(text)")
            if let actual {
                accepted += 1
                for item in actual.items {
                    // Each range holds exactly one object that JSONValue reads back.
                    #expect((try? JSONValue.parse(bytes[item.range]))?.objectValue != nil)
                }
            }
        }
        // The mutations must leave a fair share of valid pages, or the test proves little.
        #expect(accepted > 200)
    }

    /// What the scanner should find in `bytes`, worked out with `JSONValue`.
    private static func expectedPage(_ bytes: [UInt8]) -> (ids: [String], accountIDs: [String?], cursor: String?)? {
        guard let page = try? JSONValue.parse(bytes), let object = page.objectValue,
            let items = object["items"]?.arrayValue
        else { return nil }
        var cursor: String?
        switch object["cursor"] {
        case nil, .null?: cursor = nil
        case .string(let text)? where !text.isEmpty: cursor = text
        default: return nil
        }
        var ids: [String] = []
        var accountIDs: [String?] = []
        for item in items {
            guard let chat = item.objectValue, let id = chat["id"]?.stringValue, !id.isEmpty else { return nil }
            ids.append(id)
            accountIDs.append(chat["account_id"]?.stringValue)
        }
        return (ids, accountIDs, cursor)
    }
}

@Suite("Unipile chat fingerprint")
struct UnipileDigestTests {
    @Test("XXH64 reference vectors")
    func referenceVectors() {
        #expect(ChatFingerprint.fingerprint(of: Array("".utf8), seed: 0) == 0xEF46_DB37_51D8_E999)
        #expect(ChatFingerprint.fingerprint(of: Array("a".utf8), seed: 0) == 0xD24E_C4F1_A98C_6E5B)
        #expect(ChatFingerprint.fingerprint(of: Array("abc".utf8), seed: 0) == 0x44BC_2CF5_AD77_0999)
        #expect(ChatFingerprint.fingerprint(of: Array("Nobody inspects the spammish repetition".utf8), seed: 0) == 0xFBCE_A83C_8A37_8BF1)
        #expect(ChatFingerprint.fingerprint(of: Array("xxhash".utf8), seed: 20_141_025) == 0xB559_B98D_844E_0635)
    }

    /// Computed with the reference libxxhash 0.8.1 (`XXH64(data, n, seed)`), on
    /// `data[i] = (i * 31 + 7) & 0xFF`: every tail length and the 32-byte stripes.
    @Test(
        "XXH64 of every code path, with seeds",
        arguments: [
            (1, 0x0123_4567_89AB_CDEF, 0x63F3_595C_C59F_5425), (1, 0xFFFF_FFFF_FFFF_FFFF, 0xD7F4_6261_BA7C_5B95),
            (3, 0x0123_4567_89AB_CDEF, 0x2DD3_DE03_D79B_780F), (4, 0x0123_4567_89AB_CDEF, 0x881A_72A2_895D_ED30),
            (5, 0x0123_4567_89AB_CDEF, 0xC0B6_7BF2_C16E_11BC), (7, 0xFFFF_FFFF_FFFF_FFFF, 0x80C7_FBFE_BD75_B559),
            (8, 0x0123_4567_89AB_CDEF, 0x1727_919C_B64B_240F), (9, 0xFFFF_FFFF_FFFF_FFFF, 0x3FE4_27B6_8CA1_4C9D),
            (15, 0x0123_4567_89AB_CDEF, 0x141C_34B3_6741_6E1F), (16, 0xFFFF_FFFF_FFFF_FFFF, 0x7278_97B8_22AA_F2EE),
            (31, 0x0123_4567_89AB_CDEF, 0x7930_C600_2046_5077), (32, 0x0123_4567_89AB_CDEF, 0x815B_5D25_513B_13B8),
            (32, 0xFFFF_FFFF_FFFF_FFFF, 0xA428_E146_5B2E_4331), (33, 0x0123_4567_89AB_CDEF, 0x1CBD_9F0A_49F5_57E8),
            (63, 0xFFFF_FFFF_FFFF_FFFF, 0xF647_0CCC_2B8C_65CA), (64, 0x0123_4567_89AB_CDEF, 0xD5E6_B36D_0A90_7EFF),
            (65, 0xFFFF_FFFF_FFFF_FFFF, 0xAA55_F7CD_EC46_5A22), (100, 0x0123_4567_89AB_CDEF, 0x71B1_B6EA_709B_5C4A),
            (1000, 0x0123_4567_89AB_CDEF, 0x2025_9413_565C_BD55), (1000, 0xFFFF_FFFF_FFFF_FFFF, 0x44B2_E231_87D6_1C00),
        ] as [(Int, UInt64, UInt64)])
    func vectors(length: Int, seed: UInt64, expected: UInt64) {
        let data = (0..<length).map { UInt8(($0 * 31 + 7) & 0xFF) }
        #expect(ChatFingerprint.fingerprint(of: data, seed: seed) == expected)
        // Unaligned input gives the same answer.
        let shifted = [0] + data
        #expect(ChatFingerprint.fingerprint(of: shifted[1...], seed: seed) == expected)
    }
}

@Suite("Unipile query and API errors")
struct UnipileQueryAndErrorTests {
    @Test("query parameters in order, percent-encoded, account ids comma-joined")
    func query() {
        let query = ChatListQuery(
            pageSize: 50, accountType: "LINKEDIN", accountIDs: ["acc_1", "acc 2"], unread: false,
            before: "2025-01-02T00:00:00.000Z", after: "2024-12-31T23:59:59.999Z")
        #expect(
            query.percentEncodedQuery(cursor: "a/b+c=d&e é~")
                == "limit=50&account_type=LINKEDIN&account_id=acc_1,acc%202&unread=false"
                + "&before=2025-01-02T00%3A00%3A00.000Z&after=2024-12-31T23%3A59%3A59.999Z&cursor=a%2Fb%2Bc%3Dd%26e%20%C3%A9~")
        #expect(ChatListQuery(pageSize: 250).percentEncodedQuery(cursor: nil) == "limit=250")
        #expect(ChatListQuery(unread: true).percentEncodedQuery(cursor: nil) == "limit=250&unread=true")
    }

    @Test("the chats URL: trailing slashes, path prefixes, and what is not a base URL")
    func chatsURL() throws {
        func url(_ text: String) throws -> String? { UnipileClient.chatsURL(for: try #require(URL(string: text))) }
        #expect(try url("https://api1.unipile.com:13111") == "https://api1.unipile.com:13111/api/v1/chats")
        #expect(try url("https://api1.unipile.com:13111/") == "https://api1.unipile.com:13111/api/v1/chats")
        #expect(try url("http://127.0.0.1:8080/proxy//") == "http://127.0.0.1:8080/proxy/api/v1/chats")
        #expect(try url("http://host/x?y=1#z") == "http://host/x/api/v1/chats")
        #expect(try url("ftp://host") == nil)
        #expect(try url("/just/a/path") == nil)
    }

    @Test("an API error body is decoded into status, type, title and detail")
    func decodesErrorBody() {
        let body = #"{"status":401,"type":"errors/disconnected_account","title":"Disconnected account","detail":"The account appears to be disconnected from the provider service."}"#
        let error = UnipileAPIError(status: 401, body: Array(body.utf8))
        #expect(error.status == 401)
        #expect(error.type == "errors/disconnected_account")
        #expect(error.title == "Disconnected account")
        #expect(error.detail == "The account appears to be disconnected from the provider service.")
        #expect(error.bodyExcerpt == nil)
        #expect(error.isAuthenticationFailure)
        #expect(
            error.description
                == "HTTP 401 errors/disconnected_account: Disconnected account (The account appears to be disconnected from the provider service.)")
        #expect(
            error.json.compactString
                == #"{"status":401,"type":"errors/disconnected_account","title":"Disconnected account","detail":"The account appears to be disconnected from the provider service."}"#)
    }

    @Test("missing fields stay nil; the HTTP status wins over the body's")
    func partialBody() {
        let error = UnipileAPIError(status: 503, body: Array(#"{"status":200,"type":"errors/no_channel"}"#.utf8))
        #expect(error.status == 503)
        #expect(error.type == "errors/no_channel")
        #expect(error.title == nil && error.detail == nil)
        #expect(!error.isAuthenticationFailure)
        #expect(error.description == "HTTP 503 errors/no_channel")
        #expect(error.json.compactString == #"{"status":503,"type":"errors/no_channel","title":null,"detail":null}"#)
        #expect(UnipileAPIError(status: 403, body: [UInt8]()).isAuthenticationFailure)
        #expect(UnipileAPIError(status: 500, body: [UInt8]()).description == "HTTP 500")
        #expect(UnipileAPIError(status: 404, body: Array("Not Found".utf8)).description
            == "HTTP 404: Not Found (no /api/v1/chats under the source's url: give the API's base, such as https://api1.unipile.com:13111)")
        #expect(UnipileAPIError(status: 404, body: Array(#"{"type":"errors/resource_not_found"}"#.utf8)).description
            == "HTTP 404 errors/resource_not_found", "Unipile's own 404 is its own")
    }

    @Test("a body that is not an error object keeps its first 300 bytes, whole characters only")
    func nonJSONBody() {
        let html = "<html><body>" + String(repeating: "é", count: 400) + "</body></html>"
        let error = UnipileAPIError(status: 502, body: Array(html.utf8))
        let excerpt = error.bodyExcerpt ?? ""
        #expect(excerpt.utf8.count <= 300)
        #expect(excerpt.utf8.count >= 298)
        #expect(excerpt.hasPrefix("<html><body>éé"))
        #expect(!excerpt.contains("\u{FFFD}"))
        #expect(error.type == nil)
        #expect(error.json["body"]?.stringValue == excerpt)
        #expect(error.description.hasPrefix("HTTP 502: <html><body>é"))
        // JSON that is not an error object is kept as text too.
        #expect(UnipileAPIError(status: 500, body: Array("[1,2]".utf8)).bodyExcerpt == "[1,2]")
    }

    @Test("descriptions stay on one line and can drop an echoed API key")
    func hostileText() {
        let key = Secret("sk_live_SECRET123")
        let body = #"{"type":"errors/invalid_credentials","title":"Bad key\nsk_live_SECRET123\u001b[31m","detail":"key=sk_live_SECRET123"}"#
        let error = UnipileAPIError(status: 401, body: Array(body.utf8)).redacting(key)
        #expect(!error.description.contains("SECRET123"))
        #expect(!error.json.compactString.contains("SECRET123"))
        #expect(!error.description.contains("\n"))
        #expect(!error.description.contains("\u{1B}"))
        #expect(error.detail == "key=<redacted>")
    }

    @Test("pacing: the first request at once, then one interval apart; no limit at 0")
    func pacingSchedule() {
        let start = ContinuousClock.now
        var schedule = PacingSchedule<ContinuousClock.Instant>(maxRequestsPerSecond: 20)
        #expect(schedule.interval == .milliseconds(50))
        #expect(schedule.reserve(at: start) == start)
        #expect(schedule.reserve(at: start) == start + .milliseconds(50))
        #expect(schedule.reserve(at: start + .milliseconds(10)) == start + .milliseconds(100))
        // After an idle period, no burst credit is saved up.
        #expect(schedule.reserve(at: start + .seconds(5)) == start + .seconds(5))
        #expect(schedule.reserve(at: start + .seconds(5)) == start + .seconds(5) + .milliseconds(50))

        var unlimited = PacingSchedule<ContinuousClock.Instant>(maxRequestsPerSecond: 0)
        #expect(unlimited.interval == nil)
        #expect(unlimited.reserve(at: start) == start)
        #expect(unlimited.reserve(at: start) == start)
        #expect(PacingSchedule<ContinuousClock.Instant>(maxRequestsPerSecond: 0.5).interval == .seconds(2))
    }
}

/// A small deterministic random source for reproducible test inputs.
struct UnipileTestRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
