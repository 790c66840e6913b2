import CSwiftConcurrency
import NIOCore
import NIOPosix

/// Swift concurrency's global executor, made of the event loops of NIO's shared group.
///
/// swift-nio offers the same (`NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`),
/// but finds the runtime's hook with `dlsym`, which cannot see it once the release build
/// links the Swift runtime in: the hook then silently stayed unset and every task ran on
/// the default pool. Here the hook's address is taken at link time, so either build gets it.
enum EventLoopExecutor {
    /// The runtime's type for the hook: a job, and the function that would have enqueued it.
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// Sends every job bound for the global executor to an event loop of
    /// `MultiThreadedEventLoopGroup.singleton`: the current one when a job is enqueued from
    /// an event loop (no thread hop), any one otherwise.
    ///
    /// Call it once, on the main thread, before any task starts. It returns `false`, and
    /// changes nothing, when another hook is in place already.
    @discardableResult
    static func install() -> Bool {
        let hook: EnqueueGlobalHook = { job, _ in
            MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
        }
        let slot = chatbridge_swift_task_enqueueGlobal_hook()
        guard slot.pointee == nil else { return false }
        slot.pointee = unsafeBitCast(hook, to: UnsafeMutableRawPointer.self)
        return true
    }
}
