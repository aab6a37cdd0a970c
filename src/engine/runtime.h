/* runtime.h — state shared between the hooks (hooks.c) and the runtime (tracemalloc.c). Internal. */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#define UNW_LOCAL_ONLY
#include <errno.h>
#include <libunwind.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guard.h"
#include "stack_cache.h"
#include "traceback_intern.h"

/* Non-zero while tracing. Read relaxed by every hook: the only cost of a hook when not tracing. */
extern atomic_int tm__tracing;

/* Traceback limit for new traces (Python's get_traceback_limit()). */
extern atomic_int tm__traceback_limit;

/* Captures the traceback of the program's call into the tracer and returns its interned id (0 when
 * the tracer is out of memory). A stack seen before is recognized without unwinding
 * (stack_cache.h). Always inlined into the function the program called (a hook, or
 * tm_track), so the one frame to skip is that function's own; unw_backtrace reports no frame of
 * its own. Checked by tests/engine/test_traceback_intern.c. Call with the guard held. */
static inline __attribute__((always_inline)) uint32_t tm__capture(void) {
  enum { SKIP = 1 };
  int limit = atomic_load_explicit(&tm__traceback_limit, memory_order_relaxed);
  uintptr_t ra = (uintptr_t)__builtin_return_address(0);
  uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
  /* Also gives the hook a frame pointer, set up before the lookup: the caller's rbp at fp. */
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  uint32_t cached = tm__stack_cache_find(ra, cfa, fp, limit);
  if (cached != 0)
    return cached;
  void *buf[limit + SKIP + 1]; /* one more than the limit tells whether the stack was truncated */
  int n = unw_backtrace(buf, limit + SKIP + 1) - SKIP;
  if (n < 0)
    n = 0;
  bool truncated = n > limit;
  if (truncated)
    n = limit;
  /* The depth past the limit is not walked: it would cost ~7 ns a frame on every allocation.
   * A truncated stack records total_nframe = limit + 1, "more than the limit". */
  uint32_t tb = tm__intern((const uintptr_t *)(buf + SKIP), n, truncated,
                           (uint32_t)n + (truncated ? 1u : 0u));
  tm__stack_cache_learn(ra, cfa, fp, limit, (const uintptr_t *)(buf + SKIP), n, tb);
  return tb;
}

/* Records a new block of the malloc domain under traceback id tb (0: count a lost trace). */
void tm__record_trace(void *ptr, size_t size, uint32_t tb);

/* Records a block the tracer itself allocated (the guard was held). */
void tm__record_internal(void *ptr);

/* What every allocating hook does with a new block: the tracer's own blocks are counted apart;
 * a paused thread's are not traced (tm_thread_pause()); the program's get the traceback of the
 * hook's caller. Never changes errno. */
static inline __attribute__((always_inline)) void tm__record_alloc(void *ptr, size_t size) {
  if (tm__guard_held()) {
    tm__record_internal(ptr);
    return;
  }
  if (tm__pause_depth > 0)
    return;
  int saved = errno;
  tm__guard_depth++;
  tm__record_trace(ptr, size, tm__capture());
  tm__guard_depth--;
  errno = saved;
}

/* Forgets the block at ptr before the real free runs (so a concurrent malloc that reuses the
 * address cannot lose its trace). Returns true when it was a traced block of the malloc domain, and
 * then stores its meta (see trace_table.h) in *meta so that realloc can restore it. */
bool tm__record_free(void *ptr, uint64_t *meta);

/* Puts back a trace removed by tm__record_free() (a realloc that failed). */
void tm__record_restore(void *ptr, uint64_t meta);

/* Resolves the real allocator functions (idempotent). */
void tm__hooks_resolve(void);

#endif /* TM_RUNTIME_H */
