/* runtime.h — state shared between the hooks (hooks.c) and the runtime (tracemalloc.c). Internal. */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Non-zero while tracing. Read relaxed by every hook: the only cost of a hook when not tracing. */
extern atomic_int tm__tracing;

/* Records a new block of the malloc domain (or, with the guard held, a block of the tracer's own).
 * Captures the caller's traceback: call it directly from the hook the program called, so that the
 * frames to skip are always this function and the hook. Never changes errno. */
void tm__record_alloc(void *ptr, size_t size);

/* Forgets the block at ptr before the real free runs (so a concurrent malloc that reuses the
 * address cannot lose its trace). Returns true when it was a traced block of the malloc domain, and
 * then stores its meta (see trace_table.h) in *meta so that realloc can restore it. */
bool tm__record_free(void *ptr, uint64_t *meta);

/* Puts back a trace removed by tm__record_free() (a realloc that failed). */
void tm__record_restore(void *ptr, uint64_t meta);

/* Resolves the real allocator functions (idempotent). */
void tm__hooks_resolve(void);

#endif /* TM_RUNTIME_H */
