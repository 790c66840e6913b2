import Testing
@testable import ChatBridgeCore

@Suite("C library functions looked up by name")
struct CLibraryTests {
    @Test func aFunctionOfTheCLibraryIsFoundAndOneItLacksIsNot() {
        typealias Getpid = @convention(c) () -> Int32
        let getpid: Getpid? = CLibrary.function(named: "getpid")
        #expect(getpid.map { $0() > 0 } == true)
        let missing: Getpid? = CLibrary.function(named: "chatbridge_no_such_function")
        #expect(missing == nil)
    }

    #if os(Linux) && canImport(Glibc)
    @Test func glibcTakesTheOneArenaSetting() {
        #expect(CLibrary.useOneMallocArena())
    }
    #endif
}
