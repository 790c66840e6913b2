import ChatBridgeCore

// One malloc arena for every thread (CLibrary.useOneMallocArena says why): a first poll of
// 100,000 chats peaked at 104 MB with glibc's arena per thread, 78 MB with one.
CLibrary.useOneMallocArena()

// Tasks run on Swift concurrency's default pool, except a poll's and the dispatcher's,
// which prefer an event loop (Runtime's EventLoopTaskExecutor). Making NIO's event loops
// the executor of every task can deadlock: swift-async-algorithms 1.1.4's `merge` (inside
// swift-service-lifecycle's ServiceGroup) holds a lock across a suspension point
// (apple/swift-async-algorithms#430). docs/architecture.md, "Threads".
await ChatBridgeCommand.parseAndRun()
