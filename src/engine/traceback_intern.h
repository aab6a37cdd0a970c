/* traceback_intern.h — capture stacks with unw_backtrace and intern them. Internal.
 *
 * Interned tracebacks live in mmap'd arenas until tracing stops (tm__intern_reset()), and are
 * never moved. An id is published (stored in the id directory with release order) before it is
 * returned. Code outside the engine reads them under tm__intern_hold() (engine.h).
 */
#ifndef TM_TRACEBACK_INTERN_H
#define TM_TRACEBACK_INTERN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

/* Returns the id of the traceback made of ips[0..n) (most recent first), interning it when new.
 * truncated/total describe the stack. Returns 0 (no id) when the tracer ran out of memory or of
 * ids (2^24 - 2 distinct stacks since the last reset; a warning is written to stderr once):
 * the caller counts a lost trace. When fresh is not NULL, *fresh tells whether this call made the
 * id (the stack was not known). Thread-safe; allocates nothing through malloc. */
uint32_t tm__intern(const uintptr_t *ips, int n, bool truncated, uint32_t total, bool *fresh);

/* Locks / unlocks every intern shard (fork handlers). */
void tm__intern_lock_all(void);
void tm__intern_unlock_all(void);

/* Frees every interned traceback and starts ids again from 1 (tm_stop(), after the traces were
 * cleared: no table entry may hold an id then). Waits for tm__intern_hold() readers; bumps
 * tm__intern_generation so that the per-thread caches drop their ids. Thread-safe. */
void tm__intern_reset(void);

/* Bumped by each tm__intern_reset(); read relaxed by the caches of ids. */
extern atomic_uint tm__intern_generation;

/* Tests: sets the largest id handed out (0: the real limit) and returns the previous one. */
uint32_t tm__intern_set_id_limit(uint32_t limit);


#endif /* TM_TRACEBACK_INTERN_H */
