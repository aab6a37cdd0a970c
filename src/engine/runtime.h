/* runtime.h — what the hooks (hooks.c) and the runtime API (tracemalloc.c) share: the tracing
 * state, the capture of a traceback, and the recording of blocks in the tables (traces.c).
 * Internal. */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#define UNW_LOCAL_ONLY
#include <errno.h>
#include <libunwind.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame_rules.h"
#include "guard.h"
#include "scratch.h"
#include "stack_cache.h"
#include "trace_table.h"
#include "traceback_intern.h"

/* What the hooks must record: TM__HOOKS_TRACING while tracing (new blocks get a traceback),
 * TM__HOOKS_REGISTRY while the heap registry is on (blocks allocated while not tracing are still
 * recorded, without a traceback, so that every live block is known). Read relaxed by every hook:
 * when it is 0, a hook costs one load and one branch on top of the real call. */
#define TM__HOOKS_TRACING 1
#define TM__HOOKS_REGISTRY 2
extern atomic_int tm__hooks_active;

static inline bool tm__is_tracing(void) {
  return (atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) & TM__HOOKS_TRACING) != 0;
}

/* Traceback limit for new traces (Python's get_traceback_limit()). */
extern atomic_int tm__traceback_limit;

/* The number of libraries dlclose() unloaded (unload.c): part of the stack cache's epoch. */
extern atomic_uint tm__unload_count;

/* The stack cache's epoch (tm__stack_key): cached ids name nothing once tm_stop() freed the
 * interned tracebacks, and learned walks may be wrong once a library is unloaded (other code may
 * come at its addresses); either changes it, and entries of older epochs stop answering. */
static inline uint32_t tm__stack_epoch(void) {
  return atomic_load_explicit(&tm__intern_generation, memory_order_relaxed) +
         atomic_load_explicit(&tm__unload_count, memory_order_relaxed);
}

/* The capture itself (capture.c), out of line so that the hook's own frame stays small and holds
 * no copy of the new block's address: ra, cfa and fp are the hook's, as tm__capture() passes them.
 * Returns the interned id, 0 when out of memory. Call with the guard held, from tm__capture()
 * only (the frames it skips are its own and the hook's). */
uint32_t tm__capture_at(uintptr_t ra, uintptr_t cfa, uintptr_t fp);

/* Captures the traceback of the program's call into the tracer and returns its interned id (0 when
 * the tracer is out of memory). A stack seen before is recognized without unwinding, others are
 * walked with the frame rules (stack_cache.h); libunwind unwinds the rest. Always inlined into
 * the function the program called (a hook, or tm_track): the return address, canonical frame
 * address and frame pointer are that function's. Checked by tests/engine/test_traceback_intern.c
 * and tests/engine/test_stack_cache.c. Call with the guard held. */
static inline __attribute__((always_inline)) uint32_t tm__capture(void) {
  uintptr_t ra = (uintptr_t)__builtin_return_address(0);
  uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
  /* Also gives the hook a frame pointer: the caller's rbp at fp. */
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  return tm__capture_at(ra, cfa, fp);
}

/* Starts loading, before the hook calls the real allocator, the lines a capture of the hook's
 * caller reads first: the stack cache's set of its key and the frame rule of its return address.
 * Their cache misses then overlap the allocator's work instead of following it. A hint only: a
 * stale read costs the load and nothing else. Always inlined into the hook, like tm__capture(). */
static inline __attribute__((always_inline)) void tm__capture_prefetch(void) {
  tm__scratch *s = tm__scratch_self;
  /* A table of up to 256 sets (16 KiB) stays in the cache, and a thread whose stacks fit in it
   * rarely misses: nothing to hide there, and the key would be computed twice. */
  if (s == NULL || s->stack_cache == NULL || s->stack_cache_mask < 255 || tm__guard_held())
    return;
  uintptr_t ra = (uintptr_t)__builtin_return_address(0);
  uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
  int limit = atomic_load_explicit(&tm__traceback_limit, memory_order_relaxed);
  uint64_t key = tm__stack_key(ra, cfa, (uint32_t)limit, tm__stack_epoch());
  __builtin_prefetch(tm__stack_set(s->stack_cache, s->stack_cache_mask, key));
  tm__rule_slot *rules = atomic_load_explicit(&tm__rule_table, memory_order_relaxed);
  if (rules != NULL)
    __builtin_prefetch(&rules[tm__rule_home(ra)]);
}

/* Zeroes the stack below the hook when the heap registry is on (stack_cache.h, tm__stack_scrub):
 * the calls below the hook saved its registers, a block's address among them, and a conservative
 * scan (the plugin's reachability, which the registry serves) would find that stale copy in a
 * frame that later lies there and never writes the slot: once the block is freed, a block that
 * leaks at the same address would look reachable. Without the registry nothing scans the stack:
 * the hot path does not pay it. */
static inline __attribute__((always_inline)) void tm__hook_scrub(void) {
  if (atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) & TM__HOOKS_REGISTRY)
    tm__stack_scrub_small();
}

/* Records a new block of the malloc domain under traceback id tb (0: count a lost trace;
 * TM_TB_UNTRACED: register it). */
void tm__record_trace(void *ptr, size_t size, uint32_t tb);

/* Registers a block without a traceback when the heap registry is on; does nothing otherwise. */
void tm__record_untraced(void *ptr, size_t size);

/* The slot prefetch itself (traces.c); call tm__trace_prefetch(). */
void tm__trace_prefetch_slot(const void *ptr);

/* Starts loading the malloc domain's table slot of ptr into the cache, without a lock: a hint
 * (a stale or racing read costs nothing but the load). Only once the tables are large
 * (tm__tables_large): in arrays that stay in the cache it would cost the hash and save nothing.
 * Allocates nothing. */
static inline void tm__trace_prefetch(const void *ptr) {
  if (atomic_load_explicit(&tm__tables_large, memory_order_relaxed))
    tm__trace_prefetch_slot(ptr);
}

/* Records a block the tracer itself allocated (the guard was held). */
void tm__record_internal(void *ptr);

/* What every allocating hook does with a new block: the tracer's own blocks are counted apart;
 * a paused thread's, and every block while not tracing, are only registered (tm_thread_pause(),
 * the heap registry); the program's get the traceback of the hook's caller. Never changes errno. */
static inline __attribute__((always_inline)) void tm__record_alloc(void *ptr, size_t size) {
  if (tm__guard_held()) {
    tm__record_internal(ptr);
    return;
  }
  if (tm__pause_depth > 0 || !tm__is_tracing()) {
    if (atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) & TM__HOOKS_REGISTRY) {
      tm__record_untraced(ptr, size);
      tm__stack_scrub_small(); /* the registry is on: see tm__hook_scrub() */
    }
    return;
  }
  tm__trace_prefetch(ptr); /* the slot's cache miss overlaps the capture */
  int saved = errno;
  tm__guard_depth++;
  tm__record_trace(ptr, size, tm__capture());
  tm__hook_scrub();
  tm__guard_depth--;
  errno = saved;
}

/* Forgets the block at ptr before the real free runs (so a concurrent malloc that reuses the
 * address cannot lose its trace). Returns true when it was a block of the malloc domain, traced or
 * registered, and then stores its meta (see trace_table.h) in *meta so that realloc can restore
 * it. */
bool tm__record_free(void *ptr, uint64_t *meta);

/* Puts back a trace removed by tm__record_free() (a realloc that failed). */
void tm__record_restore(void *ptr, uint64_t meta);

/* Whether ptr is one of the tracer's own blocks (the address bitmap of traces.c). */
bool tm__internal_contains(void *ptr);

/* ---- the tables as a whole (traces.c), for the runtime API ---- */

/* Returns the table of domain, creating it when create is true. NULL when absent or out of room
 * (TM_MAX_DOMAINS domains, 0 included, or no memory). */
tm__table *tm__domain_table(unsigned int domain, bool create);

/* Whether TM_MAX_DOMAINS domains are known already. */
bool tm__domains_full(void);

/* Inserts (domain table, ptr) => (size, tb). Returns 0 or TM_ENOMEM. Holds the shard lock briefly. */
int tm__trace_put(tm__table *table, uintptr_t ptr, size_t size, uint32_t tb);

/* Forgets (domain table, ptr). Returns true and stores its meta when it was recorded. */
bool tm__trace_remove(tm__table *table, uintptr_t ptr, uint64_t *meta);

/* Forgets every trace of every domain and resets the counters. With the heap registry on, the
 * malloc domain's traced blocks stay, registered. Takes all locks. */
void tm__traces_clear(void);

/* Forgets the tracer's own blocks. */
void tm__internal_clear(void);

/* Locks / unlocks every domain table's shards, in the locking order. */
void tm__tables_lock_all(void);
void tm__tables_unlock_all(void);

/* Holds / releases every lock of the tables across fork(), in the locking order (domains_lock,
 * domain tables, the registry); the caller takes the intern locks between the first and the
 * tables, and the region lock last. */
void tm__fork_lock(void);
void tm__fork_unlock(void);

/* Arms the peak watch at limit (0: disarms it) and forgets its last copy; takes the copy at once
 * when traced memory is over the limit already. */
void tm__peak_watch(size_t limit);

/* Traced memory and its peak; the peak reset to the current value. */
void tm__counters_get(size_t *current, size_t *peak);
void tm__counters_reset_peak(void);
size_t tm__lost_traces(void);
size_t tm__traced_blocks(void); /* of the malloc domain */

/* Bytes of the tables and of the tracer's heap blocks (not of tm__map(): the caller adds it). */
size_t tm__traces_memory(void);

/* Decides, once, in the library's constructor, whether the heap registry stays on: when the
 * program defines tm_heap_registry_wanted non-zero, or env (TRACEMALLOC_REGISTRY) says 1.
 * Otherwise forgets what was registered and switches it off. */
void tm__registry_decide(const char *env);

/* Switches the heap registry off and forgets the blocks it registered (traced ones stay). */
void tm__registry_off(void);

#endif /* TM_RUNTIME_H */
