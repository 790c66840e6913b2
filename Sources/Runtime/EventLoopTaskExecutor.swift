import NIOCore

/// Runs a task's jobs on one NIO event loop: the loop that also reads the task's sockets.
///
/// A poll is a chain of short steps (a page arrives on an event loop, is scanned, staged,
/// the next page is asked for); a delivery too (a row is read, the request sent, the
/// answer arrives, the outcome is recorded). On Swift concurrency's default pool every
/// step is a hand-over between threads: a wake-up, a context switch and cold caches, about
/// a quarter of an unchanged poll's CPU and a third of a delivery's. Preferring an event
/// loop for the tasks of polls and of the dispatcher only (`withTaskExecutorPreference`)
/// keeps those steps on one thread. The answers then arrive on that thread too: from a
/// task on an event loop, `EventLoopGroup.any()`, which AsyncHTTPClient asks for a new
/// connection's loop, answers that loop.
///
/// ```swift
/// let executor = EventLoopTaskExecutor(eventLoop: httpClient.eventLoopGroup.next())
/// let outcome = await withTaskExecutorPreference(executor) { await poller.poll(router: router) }
/// ```
///
/// Never every task of the process: code that holds a lock across a suspension point
/// (swift-async-algorithms 1.1.4's `merge`, under `ServiceGroup`) deadlocks when the job
/// that releases the lock is queued behind a thread blocked on it. docs/architecture.md,
/// "Threads", tells that story.
///
/// Nothing run here may block: a job holds up the loop's sockets while it runs. The
/// poll's blocking work already happens elsewhere (SQLite on GRDB's queues).
package final class EventLoopTaskExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
