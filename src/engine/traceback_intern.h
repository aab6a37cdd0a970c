/* traceback_intern.h — capture stacks with unw_backtrace and intern them. Internal.
 *
 * Interned tracebacks live in mmap'd arenas for the life of the process and are never moved or
 * freed, so any thread may read one by id without a lock once it has the id. An id is published
 * (stored in the id directory with release order) before it is returned.
 */
#ifndef TM_TRACEBACK_INTERN_H
#define TM_TRACEBACK_INTERN_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

/* Returns the id of the traceback made of ips[0..n) (most recent first), interning it when new.
 * truncated/total describe the stack. Returns 0 (no id) when the tracer ran out of memory.
 * Thread-safe; allocates nothing through malloc. */
uint32_t tm__intern(const uintptr_t *ips, int n, bool truncated, uint32_t total);

/* Locks / unlocks every intern shard (fork handlers). */
void tm__intern_lock_all(void);
void tm__intern_unlock_all(void);


#endif /* TM_TRACEBACK_INTERN_H */
