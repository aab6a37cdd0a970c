/* capture.c — the traceback of a call into the tracer: the stack cache, the frame-rule walk, then
 * libunwind (see runtime.h's tm__capture and stack_cache.h). */
#include "runtime.h"

#include "frame_rules.h"
#include "scratch.h"
#include "stack_cache.h"
#include "traceback_intern.h"

/* A miss's calls go deeper than tm__hook_scrub() reaches: the same, over 1 KiB after a walk with
 * rules already read, over 4 KiB when libunwind ran or rules were read (dl_iterate_phdr). */
static inline void miss_scrub(bool deep) {
  if (!(atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) & TM__HOOKS_REGISTRY))
    return;
  if (deep)
    tm__stack_scrub();
  else
    tm__stack_scrub_walk();
}

uint32_t tm__capture_at(uintptr_t ra, uintptr_t cfa, uintptr_t fp) {
  /* unw_backtrace reports no frame of its own: the first two it reports are this function's and
   * the hook's. */
  enum { SKIP = 2 };
  int limit = atomic_load_explicit(&tm__traceback_limit, memory_order_relaxed);
  tm__scratch *scratch = tm__scratch_get();
  if (scratch == NULL)
    return 0; /* out of memory: a lost trace */
  uint64_t key = tm__stack_key(ra, cfa, (uint32_t)limit, tm__stack_epoch());
  uint32_t cached = tm__stack_cache_find(scratch->stack_cache, scratch->stack_cache_mask, key,
                                         cfa, fp, scratch->stack_lo, scratch->stack_hi);
  if (cached != 0) {
    TM_CAPTURE_COUNT(TM_CAPTURE_HIT);
    return cached;
  }
  unsigned computed = tm__frame_rules_computed;
  cached = tm__stack_cache_miss(scratch, ra, cfa, fp, limit, key); /* a walk with the frame rules */
  miss_scrub(tm__frame_rules_computed != computed);
  if (cached != 0) {
    TM_CAPTURE_COUNT(TM_CAPTURE_WALKED);
    return cached;
  }
  TM_CAPTURE_COUNT(TM_CAPTURE_UNWOUND);
  /* In the thread's scratch block, not on its stack: the tracer's stack use stays the same
   * whatever the limit. One more than the limit tells whether the stack was truncated. */
  void **buf = scratch->capture;
  _Static_assert(TM_SCRATCH_FRAMES >= TM_MAX_NFRAME + SKIP + 1, "capture buffer too small");
  int n = unw_backtrace(buf, limit + SKIP + 1) - SKIP;
  if (n < 0)
    n = 0;
  bool truncated = n > limit;
  if (truncated)
    n = limit;
  /* The depth past the limit is not walked: it would cost ~7 ns a frame on every allocation.
   * A truncated stack records total_nframe = limit + 1, "more than the limit". */
  uint32_t tb = tm__intern((const uintptr_t *)(buf + SKIP), n, truncated,
                           (uint32_t)n + (truncated ? 1u : 0u), NULL);
  miss_scrub(true);
  return tb;
}
