#include "CSwiftConcurrency.h"

// Declared by the Swift runtime (include/swift/Runtime/Concurrency.h) as a function pointer
// variable; only its address is needed here.
extern void *swift_task_enqueueGlobal_hook;

void *_Nullable *_Nonnull chatbridge_swift_task_enqueueGlobal_hook(void) {
    return &swift_task_enqueueGlobal_hook;
}
