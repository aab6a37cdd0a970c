/* tracemalloc.c — the runtime: start/stop, counters, domains, fork handlers, TRACEMALLOC=N.
 *
 * Locking order, outermost first: domains_lock, intern shards (then the intern arena lock), the
 * domain tables' shards (by domain registration order, then shard index), the internal table's
 * shards, and last the region allocator behind tm__map(). Every path that takes more than one lock
 * follows it (fork handlers, clear, snapshot copy, a table or intern shard growing).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "guard.h"
#include "runtime.h"
#include "trace_table.h"
#include "traceback_intern.h"
#include "tracemalloc.h"

#define MAX_DOMAINS TM_MAX_DOMAINS

atomic_int tm__tracing;

atomic_int tm__traceback_limit = 1;

/* Traced bytes over every domain, and their peak. Updated with the shard lock of the block held. */
static atomic_size_t traced_current;
static atomic_size_t traced_peak;

/* Allocations made while tracing whose trace could not be recorded. */
static atomic_size_t lost_traces;

/* The malloc domain's table. Page-aligned, like the internal table and the intern shards: a table
 * is exactly one page, so a forked child (a Check test) that releases the fork locks copies one
 * page per table, not two. */
static tm__table main_table __attribute__((aligned(4096)));

/* domain => table. domains[0] is the malloc domain. Entries are appended under domains_lock and
 * published by ndomains (release), so readers scan without the lock. Tables are never freed. */
static struct {
  unsigned int domain;
  tm__table *table;
} domains[MAX_DOMAINS] = {{0, &main_table}};
static atomic_size_t ndomains = 1;
static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;

/* The tracer's own heap blocks (allocated with the guard held): ptr => malloc_usable_size. */
static tm__table internal_table __attribute__((aligned(4096)));
static atomic_size_t internal_count;

/* ---- counters ---------------------------------------------------------------------------------- */

static void counters_add(size_t size) {
  size_t cur = atomic_fetch_add_explicit(&traced_current, size, memory_order_relaxed) + size;
  size_t peak = atomic_load_explicit(&traced_peak, memory_order_relaxed);
  while (cur > peak && !atomic_compare_exchange_weak_explicit(&traced_peak, &peak, cur,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
    ;
}

static void counters_sub(size_t size) {
  atomic_fetch_sub_explicit(&traced_current, size, memory_order_relaxed);
}

/* ---- domains ----------------------------------------------------------------------------------- */

/* Returns the table of domain, creating it when create is true. NULL when absent or out of room. */
static tm__table *domain_table(unsigned int domain, bool create) {
  if (domain == 0)
    return &main_table;
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = 1; i < n; i++)
    if (domains[i].domain == domain)
      return domains[i].table;
  if (!create)
    return NULL;
  tm__table *table = NULL;
  pthread_mutex_lock(&domains_lock);
  n = atomic_load_explicit(&ndomains, memory_order_relaxed);
  for (size_t i = 1; i < n && table == NULL; i++)
    if (domains[i].domain == domain)
      table = domains[i].table;
  /* tm__map() returns zeroed memory: zeroed shards are empty, with unlocked locks. */
  if (table == NULL && n < MAX_DOMAINS && (table = tm__map(sizeof *table)) != NULL) {
    domains[n].domain = domain;
    domains[n].table = table;
    atomic_store_explicit(&ndomains, n + 1, memory_order_release);
  }
  pthread_mutex_unlock(&domains_lock);
  return table;
}

static void tables_lock_all(void) {
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    tm__table_lock_all(domains[i].table);
}

static void tables_unlock_all(void) {
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = n; i-- > 0;)
    tm__table_unlock_all(domains[i].table);
}

/* Forgets every trace of every domain and resets the counters. Takes all locks. */
static void traces_clear(void) {
  tables_lock_all();
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    for (size_t s = 0; s < TM_TABLE_SHARDS; s++)
      tm__shard_clear_unlocked(&domains[i].table->shards[s]);
  atomic_store(&traced_current, 0);
  atomic_store(&traced_peak, 0);
  atomic_store(&lost_traces, 0);
  tables_unlock_all();
}

static void internal_clear(void) {
  tm__table_lock_all(&internal_table);
  for (size_t s = 0; s < TM_TABLE_SHARDS; s++)
    tm__shard_clear_unlocked(&internal_table.shards[s]);
  atomic_store(&internal_count, 0);
  tm__table_unlock_all(&internal_table);
}

/* ---- recording --------------------------------------------------------------------------------- */

/* Inserts (domain, ptr) => (size, tb). Returns 0 or TM_ENOMEM. Holds the shard lock briefly. */
static int trace_put(tm__table *table, uintptr_t ptr, size_t size, uint32_t tb) {
  if (tb == 0 || size > TM_SIZE_MAX)
    return TM_ENOMEM;
  uint64_t hash = tm__hash_ptr(ptr);
  tm__shard *s = tm__table_shard(table, hash);
  uint64_t old;
  bool failed;
  int rc = 0;
  tm__lock_acquire(&s->lock);
  /* Re-checked under the lock: tm_stop() clears each shard under its lock after clearing the flag,
   * so a racing insert either lands before that clear or sees the flag down. */
  if (atomic_load(&tm__tracing)) {
    if (tm__shard_put_unlocked(s, ptr, hash, tm__meta_pack(size, tb), &old, &failed))
      counters_sub(tm__meta_size(old));
    if (failed)
      rc = TM_ENOMEM;
    else
      counters_add(size);
  }
  tm__lock_release(&s->lock);
  return rc;
}

/* Forgets (domain, ptr). Returns true and stores its meta when it was traced. */
static bool trace_remove(tm__table *table, uintptr_t ptr, uint64_t *meta) {
  uint64_t hash = tm__hash_ptr(ptr);
  tm__shard *s = tm__table_shard(table, hash);
  tm__lock_acquire(&s->lock);
  bool found = tm__shard_remove_unlocked(s, ptr, hash, meta);
  if (found)
    counters_sub(tm__meta_size(*meta));
  tm__lock_release(&s->lock);
  return found;
}

static bool internal_remove(void *ptr) {
  uint64_t hash = tm__hash_ptr((uintptr_t)ptr);
  tm__shard *s = tm__table_shard(&internal_table, hash);
  uint64_t meta;
  tm__lock_acquire(&s->lock);
  bool found = tm__shard_remove_unlocked(s, (uintptr_t)ptr, hash, &meta);
  tm__lock_release(&s->lock);
  if (found)
    atomic_fetch_sub_explicit(&internal_count, 1, memory_order_relaxed);
  return found;
}

void tm__record_internal(void *ptr) {
  uint64_t hash = tm__hash_ptr((uintptr_t)ptr);
  tm__shard *s = tm__table_shard(&internal_table, hash);
  uint64_t old;
  bool failed;
  size_t size = malloc_usable_size(ptr);
  tm__lock_acquire(&s->lock);
  if (!tm__shard_put_unlocked(s, (uintptr_t)ptr, hash, tm__meta_pack(size, 0), &old, &failed) &&
      !failed)
    atomic_fetch_add_explicit(&internal_count, 1, memory_order_relaxed);
  tm__lock_release(&s->lock);
}

void tm__record_trace(void *ptr, size_t size, uint32_t tb) {
  if (trace_put(&main_table, (uintptr_t)ptr, size, tb) != 0)
    atomic_fetch_add_explicit(&lost_traces, 1, memory_order_relaxed);
}

bool tm__record_free(void *ptr, uint64_t *meta) {
  if (tm__guard_held()) {
    internal_remove(ptr);
    return false;
  }
  bool found = trace_remove(&main_table, (uintptr_t)ptr, meta);
  /* A block the tracer allocated and handed to the program (a formatted string, say). */
  if (!found && atomic_load_explicit(&internal_count, memory_order_relaxed) != 0)
    internal_remove(ptr);
  return found;
}

void tm__record_restore(void *ptr, uint64_t meta) {
  tm__record_trace(ptr, tm__meta_size(meta), tm__meta_tb(meta));
}

/* ---- public runtime API ------------------------------------------------------------------------ */

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
  if (!atomic_load(&tm__tracing)) {
    traces_clear(); /* drop anything a racing hook slipped in after the last stop */
    atomic_store(&tm__tracing, 1);
  }
  return 0;
}

void tm_stop(void) {
  if (!atomic_exchange(&tm__tracing, 0))
    return;
  traces_clear();
  internal_clear();
}

bool tm_is_tracing(void) { return atomic_load(&tm__tracing) != 0; }

void tm_clear_traces(void) {
  if (atomic_load(&tm__tracing))
    traces_clear();
}

int tm_get_traceback_limit(void) { return atomic_load(&tm__traceback_limit); }

void tm_get_traced_memory(size_t *current, size_t *peak) {
  /* Read under every lock so that current <= peak always holds for the caller. */
  tables_lock_all();
  if (current)
    *current = atomic_load(&traced_current);
  if (peak)
    *peak = atomic_load(&traced_peak);
  tables_unlock_all();
}

void tm_reset_peak(void) {
  tables_lock_all();
  atomic_store(&traced_peak, atomic_load(&traced_current));
  tables_unlock_all();
}

size_t tm_get_tracemalloc_memory(void) {
  size_t heap = 0;
  tm__table_lock_all(&internal_table);
  for (size_t s = 0; s < TM_TABLE_SHARDS; s++)
    heap += internal_table.shards[s].bytes;
  tm__table_unlock_all(&internal_table);
  return atomic_load(&tm__mapped_bytes) + heap + sizeof main_table + sizeof internal_table;
}

size_t tm_get_lost_traces(void) { return atomic_load(&lost_traces); }

int tm_track(unsigned int domain, uintptr_t ptr, size_t size) {
  if (!atomic_load(&tm__tracing))
    return TM_ENOTTRACING;
  if (ptr == 0)
    return TM_EINVAL;
  tm__table *table = domain_table(domain, true);
  if (table == NULL)
    return atomic_load(&ndomains) >= MAX_DOMAINS ? TM_ETOOMANYDOMAINS : TM_ENOMEM;
  int saved = errno;
  tm__guard_depth++;
  int rc = trace_put(table, ptr, size, tm__capture());
  tm__guard_depth--;
  errno = saved;
  return rc;
}

int tm_untrack(unsigned int domain, uintptr_t ptr) {
  if (!atomic_load(&tm__tracing))
    return TM_ENOTTRACING;
  tm__table *table = domain_table(domain, false);
  uint64_t meta;
  if (table != NULL)
    trace_remove(table, ptr, &meta);
  return 0;
}

void tm_thread_pause(void) { tm__pause_depth++; }

void tm_thread_resume(void) {
  if (tm__pause_depth > 0)
    tm__pause_depth--;
}

bool tm_thread_is_paused(void) { return tm__pause_depth > 0; }

/* ---- what the analysis layer reads (engine.h) -------------------------------------------------- */

tm__raw_trace *tm__traces_copy(size_t *n, int *limit, bool *failed) {
  *n = 0;
  *limit = tm_get_traceback_limit();
  if (failed)
    *failed = false;
  tables_lock_all();
  size_t nd = atomic_load_explicit(&ndomains, memory_order_acquire);
  size_t total = 0;
  for (size_t d = 0; d < nd; d++)
    total += tm__table_count_unlocked(domains[d].table);
  /* Allocating with the table locks held is safe: with the guard held, malloc only touches the
   * internal table, which comes after them in the locking order. */
  tm__raw_trace *out = total ? malloc(total * sizeof *out) : NULL;
  if (out != NULL) {
    for (size_t d = 0; d < nd; d++) {
      for (size_t s = 0; s < TM_TABLE_SHARDS; s++) {
        const tm__shard *sh = &domains[d].table->shards[s];
        for (size_t i = 0; sh->slots && i <= sh->mask; i++) {
          if (sh->slots[i].key == 0)
            continue;
          out[*n] = (tm__raw_trace){sh->slots[i].key, tm__meta_size(sh->slots[i].meta),
                                    tm__meta_tb(sh->slots[i].meta), domains[d].domain};
          (*n)++;
        }
      }
    }
  } else if (total && failed) {
    *failed = true;
  }
  tables_unlock_all();
  return out;
}

bool tm__trace_find(uintptr_t ptr, tm__raw_trace *out) {
  uint64_t hash = tm__hash_ptr(ptr);
  tm__shard *s = tm__table_shard(&main_table, hash);
  uint64_t meta;
  tm__lock_acquire(&s->lock);
  bool found = tm__shard_get_unlocked(s, ptr, hash, &meta);
  tm__lock_release(&s->lock);
  if (found)
    *out = (tm__raw_trace){ptr, tm__meta_size(meta), tm__meta_tb(meta), 0};
  return found;
}

/* ---- fork and start-up ------------------------------------------------------------------------- */

/* Check runs every test in a forked child, which must go on tracing with consistent tables: hold
 * every lock across fork() so that no table is copied mid-update. */
static void fork_prepare(void) {
  pthread_mutex_lock(&domains_lock);
  tm__intern_lock_all();
  tables_lock_all();
  tm__table_lock_all(&internal_table);
  tm__region_lock();
}

static void fork_release(void) {
  tm__region_unlock();
  tm__table_unlock_all(&internal_table);
  tables_unlock_all();
  tm__intern_unlock_all();
  pthread_mutex_unlock(&domains_lock);
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
  pthread_atfork(fork_prepare, fork_release, fork_release);
  int n = env_nframe();
  if (n > 0)
    tm_start(n);
  else if (n < 0)
    fprintf(stderr,
            "tracemalloc: TRACEMALLOC=%s is not a number of frames in 1..%d; tracing not started\n",
            secure_getenv("TRACEMALLOC"), TM_MAX_NFRAME);
  errno = saved;
}
