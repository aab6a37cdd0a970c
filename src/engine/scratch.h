/* scratch.h — the tracer's per-thread working memory, outside the thread's stack and TLS. Internal.
 *
 * A capture needs room for TM_MAX_NFRAME + 3 return addresses (the stack cache's table, mapped
 * apart, grows with the thread's stacks). On the thread's stack that room would grow with the
 * traceback limit (8 KiB at 1024 frames); in static TLS it would be carved from every thread's
 * stack by glibc, so that a thread created with a 16 KiB stack (PTHREAD_STACK_MIN) could not even
 * start. Instead each thread gets one block from tm__map() on its first capture, found through a
 * single TLS pointer, and returned to the tracer's free lists when the thread exits (a
 * pthread key destructor). The tracer's own stack use is then bounded, whatever the limit.
 */
#ifndef TM_SCRATCH_H
#define TM_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

#include "tracemalloc.h"

/* The stack cache's entry (stack_cache.h, which uses this block): only pointed to here, so that
 * the dependency goes one way. */
struct tm__stack_entry;

#define TM_SCRATCH_FRAMES (TM_MAX_NFRAME + 3) /* the limit, the two frames to skip, the truncation probe */

typedef struct tm__scratch {
  struct tm__stack_entry *stack_cache;                 /* stack_cache.h: the thread's table, */
  size_t stack_cache_bytes;                            /* its size, for the release at exit, */
  uint32_t stack_cache_mask;                           /* its sets - 1, */
  uint32_t stack_cache_misses;                         /* misses since it was mapped or grew */
  uintptr_t stack_lo, stack_hi;                        /* the thread's stack, once walked */
  void *capture[TM_SCRATCH_FRAMES];                    /* runtime.h: unw_backtrace's buffer */
} tm__scratch;

extern __thread tm__scratch *tm__scratch_self __attribute__((tls_model("initial-exec")));

/* Maps the calling thread's block (zero-filled) and registers its release at thread exit.
 * Returns NULL when the tracer is out of memory. Allocates nothing through malloc. */
tm__scratch *tm__scratch_slow(void);

/* The calling thread's block, or NULL when it could not be mapped. Call with the guard held. */
static inline __attribute__((always_inline)) tm__scratch *tm__scratch_get(void) {
  tm__scratch *s = tm__scratch_self;
  return __builtin_expect(s != NULL, 1) ? s : tm__scratch_slow();
}

#endif /* TM_SCRATCH_H */
