import ChatBridgeCore

// One malloc arena for every thread (CLibrary.useOneMallocArena says why): a first poll of
// 100,000 chats peaked at 104 MB with glibc's arena per thread, 78 MB with one.
CLibrary.useOneMallocArena()

// Tasks run on Swift concurrency's default pool. Making NIO's event loops the executor
// saved 14-17% of a poll's CPU, but it can deadlock: swift-async-algorithms 1.1.4's
// `merge` (inside swift-service-lifecycle's ServiceGroup) holds a lock across a suspension
// point (apple/swift-async-algorithms#430), and the job that would release it was queued
// on the very event loop that a cancellation handler then blocked waiting for that lock.
// A daemon whose http.listen port was taken hung at start about once in 40 tries under
// load; on the default pool another thread runs that job. docs/architecture.md, "Threads".
await ChatBridgeCommand.parseAndRun()
