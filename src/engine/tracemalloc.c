/* tracemalloc.c — the runtime API: start/stop, counters, domains, pause, fork handlers,
 * TRACEMALLOC=N. The tables and the locking order are traces.c's; the hooks are hooks.c's. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "hooks.h"
#include "runtime.h"
#include "trace_table.h"
#include "traceback_intern.h"
#include "tracemalloc.h"

/* ---- public runtime API ------------------------------------------------------------------------ */

/* How many times the traces were forgotten (tm_get_traces_generation()). */
static atomic_ulong traces_generation;

int tm_start(int nframe) {
  if (nframe < 1 || nframe > TM_MAX_NFRAME)
    return TM_EINVAL;
  tm__hooks_resolve();
  /* libunwind builds a 256 KiB per-thread cache on a thread's first capture and fills all of it.
   * Made here, before the program forks (Check forks a child per test), the children share it
   * copy-on-write instead of each building and faulting in its own (~70 page faults a test).
   * Once per thread: a forked child inherits the flag with the cache, and walking this stack
   * again would cost it cache misses on frames (tm_start's callers) no walk has seen. */
  static __thread bool unwinder_warm __attribute__((tls_model("initial-exec")));
  if (!unwinder_warm) {
    void *warm[4];
    tm__guard_depth++;
    unw_backtrace(warm, 4);
    tm__guard_depth--;
    unwinder_warm = true;
  }
  atomic_store(&tm__traceback_limit, nframe);
  if (!tm__is_tracing()) {
    tm__traces_clear(); /* drop anything a racing hook slipped in after the last stop */
    atomic_fetch_add(&traces_generation, 1);
    atomic_fetch_or(&tm__hooks_active, TM__HOOKS_TRACING);
    /* Under valgrind or a sanitizer, malloc is theirs: nothing would ever be traced, and a leak
     * checker that sees nothing passes every leak. Say so instead. */
    if (!tm__hooks_own_malloc()) {
      tm_stop();
      return TM_EFOREIGN;
    }
  }
  return 0;
}

void tm_stop(void) {
  if (!(atomic_fetch_and(&tm__hooks_active, ~TM__HOOKS_TRACING) & TM__HOOKS_TRACING))
    return;
  tm__traces_clear();
  atomic_fetch_add(&traces_generation, 1);
  tm__internal_clear();
  tm__intern_reset(); /* no trace holds a traceback id now */
}

bool tm_is_tracing(void) { return tm__is_tracing(); }

void tm_clear_traces(void) {
  if (tm__is_tracing()) {
    tm__traces_clear();
    atomic_fetch_add(&traces_generation, 1);
  }
}

unsigned long tm_get_traces_generation(void) { return atomic_load(&traces_generation); }

int tm_get_traceback_limit(void) { return atomic_load(&tm__traceback_limit); }

void tm_get_traced_memory(size_t *current, size_t *peak) { tm__counters_get(current, peak); }

void tm_reset_peak(void) { tm__counters_reset_peak(); }

/* What the tracer keeps resident: the pages of its mappings that are in memory (tables, caches,
 * interned stacks; mapped but untouched pages, such as most of the frame-rule table, and retired
 * arrays do not count), its heap blocks, and its static tables. */
size_t tm_get_tracemalloc_memory(void) { return tm__resident_bytes() + tm__traces_memory(); }

size_t tm_get_lost_traces(void) { return tm__lost_traces(); }

size_t tm_get_traced_blocks(void) { return tm__traced_blocks(); }

int tm_track(unsigned int domain, uintptr_t ptr, size_t size) {
  if (!tm__is_tracing())
    return TM_ENOTTRACING;
  if (ptr == 0)
    return TM_EINVAL;
  tm__table *table = tm__domain_table(domain, true);
  if (table == NULL)
    return tm__domains_full() ? TM_ETOOMANYDOMAINS : TM_ENOMEM;
  int saved = errno;
  tm__guard_depth++;
  int rc = tm__trace_put(table, ptr, size, tm__capture());
  tm__guard_depth--;
  errno = saved;
  return rc;
}

int tm_untrack(unsigned int domain, uintptr_t ptr) {
  if (!tm__is_tracing())
    return TM_ENOTTRACING;
  tm__table *table = tm__domain_table(domain, false);
  uint64_t meta;
  if (table != NULL)
    tm__trace_remove(table, ptr, &meta);
  return 0;
}

/* Deepens the calling thread's pause by one level, of the kind given (guard.h). */
static void pause_push(bool scanned) {
  if (tm__pause_depth >= 0 && tm__pause_depth < 64) {
    uint64_t bit = UINT64_C(1) << tm__pause_depth;
    tm__pause_scanned_bits = scanned ? tm__pause_scanned_bits | bit : tm__pause_scanned_bits & ~bit;
  }
  tm__pause_depth++;
}

void tm_thread_pause(void) { pause_push(false); }

void tm_thread_pause_scanned(void) { pause_push(true); }

void tm_thread_resume(void) {
  if (tm__pause_depth > 0)
    tm__pause_depth--;
}

bool tm_thread_is_paused(void) { return tm__pause_depth > 0; }

const char *tm_get_malloc_owner(void) {
  tm__hooks_resolve();
  int active = atomic_fetch_or(&tm__hooks_active, 0);
  if (active == 0)
    atomic_fetch_or(&tm__hooks_active, TM__HOOKS_TRACING); /* the probe needs active hooks */
  bool ours = tm__hooks_own_malloc();
  if (active == 0)
    tm_stop();
  return ours ? NULL : tm__hooks_malloc_owner();
}

void tm_heap_registry_disable(void) { tm__registry_off(); }

void tm_peak_watch(size_t limit) { tm__peak_watch(limit); }

bool tm_heap_registry_is_on(void) {
  return (atomic_load(&tm__hooks_active) & TM__HOOKS_REGISTRY) != 0;
}

/* ---- fork and start-up ------------------------------------------------------------------------- */

/* Check runs every test in a forked child, which must go on tracing with consistent tables: hold
 * every lock across fork() so that no table is copied mid-update. */
static void fork_prepare(void) {
  tm__intern_lock_all();
  tm__fork_lock();
  tm__program_maps_lock();
  tm__region_lock();
}

static void fork_release(void) {
  tm__region_unlock();
  tm__program_maps_unlock();
  tm__fork_unlock();
  tm__intern_unlock_all();
}

atomic_uint tm__forks_made;

static void fork_parent(void) {
  fork_release();
  atomic_fetch_add_explicit(&tm__forks_made, 1, memory_order_relaxed);
}

static void fork_child(void) {
  fork_release();
  atomic_store_explicit(&tm__forks_made, 0, memory_order_relaxed);
}

/* Parses TRACEMALLOC=N (Python's PYTHONTRACEMALLOC). Returns N, 0 when unset or empty, -1 when bad.
 * Read with secure_getenv(): a setuid or setgid program ignores it. */
static int env_nframe(void) {
  const char *value = secure_getenv("TRACEMALLOC");
  if (value == NULL || *value == '\0')
    return 0;
  char *end;
  errno = 0;
  long n = strtol(value, &end, 10);
  if (errno != 0 || *end != '\0' || end == value || n < 1 || n > TM_MAX_NFRAME)
    return -1;
  return (int)n;
}

__attribute__((constructor(101))) static void tm__init(void) {
  int saved = errno;
  tm__hooks_resolve();
  tm__registry_decide(secure_getenv("TRACEMALLOC_REGISTRY"));
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  int n = env_nframe();
  if (n > 0)
    tm_start(n);
  else if (n < 0)
    fprintf(stderr,
            "tracemalloc: TRACEMALLOC=%s is not a number of frames in 1..%d; tracing not started\n",
            secure_getenv("TRACEMALLOC"), TM_MAX_NFRAME);
  errno = saved;
}
