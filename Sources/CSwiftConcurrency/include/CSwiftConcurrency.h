#ifndef CSWIFTCONCURRENCY_H
#define CSWIFTCONCURRENCY_H

/// Where the Swift runtime keeps `swift_task_enqueueGlobal_hook`: the function, when set,
/// that receives every job bound for the global concurrent executor.
///
/// Taken at link time, so it works whether the runtime is a shared library (debug builds,
/// tests) or linked into the binary (release): a static runtime hides the symbol from
/// `dlsym`, which is how swift-nio's `unsafeTryInstall…` looks for it.
void *_Nullable *_Nonnull chatbridge_swift_task_enqueueGlobal_hook(void);

#endif
