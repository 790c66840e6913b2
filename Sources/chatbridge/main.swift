import ChatBridgeCore

// One malloc arena for every thread (CLibrary.useOneMallocArena says why): a first poll of
// 100,000 chats peaked at 104 MB with glibc's arena per thread, 78 MB with one.
CLibrary.useOneMallocArena()

// Swift concurrency runs its tasks on the event loops of NIO's shared group instead of a
// pool of its own. A poll reads each page on an event loop and then scans it in a task;
// with one set of threads, handing the page over no longer wakes a second thread (an
// unchanged poll of 100,000 chats made 885 futex and 1,774 epoll_wait calls, now 39 and
// 419). This must happen on the main thread before any task starts, which is why the
// command is started from here and not from an `@main` type. Nothing in chatbridge
// blocks a thread inside a task: SQLite work runs on GRDB's queues, stdout lines are
// written on a queue of their own, child processes are waited for on threads of their own.
EventLoopExecutor.install()
await ChatBridgeCommand.parseAndRun()
