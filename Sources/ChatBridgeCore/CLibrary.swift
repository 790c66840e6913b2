#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Functions of the C library that Swift's `Glibc` module does not declare (glibc's GNU
/// extensions, `<malloc.h>`), looked up by name in the running process.
///
/// ```swift
/// typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
/// if let mallopt: Mallopt = CLibrary.function(named: "mallopt") { _ = mallopt(-8, 1) }
/// ```
package enum CLibrary {
    /// The function called `name`, as `Function` (a `@convention(c)` type that must match
    /// its C declaration), or `nil` when this C library has none.
    package static func function<Function>(named name: String) -> Function? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: Function.self)
    }

    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32

    /// Makes every thread allocate from one malloc arena (glibc's `M_ARENA_MAX`), so that
    /// memory one thread frees is there for the next allocation of any other. Returns
    /// whether the C library took the setting (only glibc has it).
    ///
    /// glibc gives threads that allocate at the same time arenas of their own; a page read
    /// on one thread and written to the store from another then leaves memory freed in
    /// each arena that the others cannot reuse. A first poll of 100,000 chats peaked at
    /// 104 MB with several arenas and at 78 MB with one, and took less CPU; glibc's
    /// per-thread caches keep most small allocations off the arena's lock.
    @discardableResult
    package static func useOneMallocArena() -> Bool {
        guard let mallopt: Mallopt = function(named: "mallopt") else { return false }
        let arenaMaximum: Int32 = -8  // M_ARENA_MAX in <malloc.h>
        return mallopt(arenaMaximum, 1) == 1
    }
}
