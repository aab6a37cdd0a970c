/* traces.c — the live blocks: one table per domain, the tracer's own blocks, the counters, and
 * the heap registry.
 *
 * Every table maps a block's address to its meta (trace_table.h): its size and the id of its
 * interned traceback. A traced block (recorded while tracing) has a real id; a registered block
 * (recorded while not tracing, or by a paused thread, when the heap registry is on) has the id
 * TM_TB_UNTRACED. Traced memory, its peak and every snapshot count traced blocks only, so the API
 * keeps Python's meaning; the registry only makes the set of live blocks complete for the
 * reachability scan (engine.h, docs/engine.md "Every live block").
 *
 * Locking order, outermost first: intern shards (then the intern arena lock), domains_lock, the
 * domain tables' shards (by domain registration order, then shard index), the registry's shards,
 * and last the region allocator behind tm__map(). Every path that takes more than one lock follows
 * it (fork handlers, clear, snapshot copy, a table or intern shard growing). The tracer's own
 * blocks are kept in a lock-free address bitmap (addr_bitmap.h), outside the order.
 */
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "addr_bitmap.h"
#include "engine.h"
#include "guard.h"
#include "hooks.h"
#include "runtime.h"
#include "trace_table.h"
#include "tracemalloc.h"

/* Bit TM__HOOKS_TRACING while tracing, bit TM__HOOKS_REGISTRY while the registry is on. The
 * registry starts on, so that the blocks allocated before any constructor ran (the loader's,
 * libc's, GLib's) are known; the library's constructor switches it off in programs that did not
 * ask for it (tm__registry_decide()). */
atomic_int tm__hooks_active = TM__HOOKS_REGISTRY;

atomic_int tm__tracing;

atomic_int tm__traceback_limit = 1;

/* Traced bytes over every domain, and their peak. Updated with the shard lock of the block held. */
static atomic_size_t traced_current;
static atomic_size_t traced_peak;

/* Allocations made while tracing whose trace could not be recorded. */
static atomic_size_t lost_traces;

/* The malloc domain's table. Page-aligned, like the registry and the intern shards: a table
 * is exactly one page, so a forked child (a Check test) that releases the fork locks copies one
 * page per table, not two. */
static tm__table main_table __attribute__((aligned(4096)));

/* domain => table. domains[0] is the malloc domain. Entries are appended under domains_lock and
 * published by ndomains (release), so readers scan without the lock. Tables are never freed. */
static struct {
  unsigned int domain;
  tm__table *table;
} domains[TM_MAX_DOMAINS] = {{0, &main_table}};
static atomic_size_t ndomains = 1;
static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;

/* The heap registry's blocks: ptr => (size, TM_TB_UNTRACED or TM_TB_PAUSED). Apart from the
 * traces, so that the malloc domain's table holds only what a window allocated and stays small
 * and cache-hot for the allocations a test makes; every live block of the program is in one of
 * the two. After the domain tables in the locking order. */
static tm__table registry_table __attribute__((aligned(4096)));

/* The tracer's own heap blocks (allocated with the guard held), each counted for its
 * malloc_usable_size(). An address-indexed bitmap, not a hash table: the tracer allocates and frees
 * in bursts (tens of thousands of blocks in a first report), at adjacent addresses, which a bitmap
 * keeps in a few cache lines. */
static tm__bitmap internal_blocks;

/* The peak watch (tm_peak_watch()): the traces as they were when traced memory first passed
 * watch_limit. watch_limit 0: no watch. watch_state: 0 idle or taken, 1 armed, 2 crossed (the
 * thread that crossed takes the copy once it has dropped its shard lock). The copy is replaced
 * only by tm_peak_watch(), which the caller does not race with tm__peak_watch_traces(). */
static atomic_size_t watch_limit;
static atomic_int watch_state;
static tm__raw_trace *watch_traces;
static size_t watch_n;
static int watch_tb_limit;

/* ---- counters ---------------------------------------------------------------------------------- */

/* Single-threaded, the counters are read and written without an atomic read-modify-write
 * (tm__process_single_threaded()). */
static void counters_add(size_t size) {
  size_t cur;
  if (tm__process_single_threaded()) {
    cur = atomic_load_explicit(&traced_current, memory_order_relaxed) + size;
    atomic_store_explicit(&traced_current, cur, memory_order_relaxed);
  } else {
    cur = atomic_fetch_add_explicit(&traced_current, size, memory_order_relaxed) + size;
  }
  size_t watch = atomic_load_explicit(&watch_limit, memory_order_relaxed);
  if (__builtin_expect(watch != 0 && cur > watch, 0)) {
    int armed = 1;
    atomic_compare_exchange_strong(&watch_state, &armed, 2);
  }
}

/* The peak is raised where the current total falls, not where it rises: every maximum the total
 * reaches is the value the next decrement finds, and a reader takes the larger of the peak and
 * the total (tm__counters_get). A program that grows (most allocations, few frees) then pays one
 * atomic per allocation instead of two. */
static void counters_sub(size_t size) {
  size_t before, peak = atomic_load_explicit(&traced_peak, memory_order_relaxed);
  if (tm__process_single_threaded()) {
    before = atomic_load_explicit(&traced_current, memory_order_relaxed);
    atomic_store_explicit(&traced_current, before - size, memory_order_relaxed);
    if (before > peak)
      atomic_store_explicit(&traced_peak, before, memory_order_relaxed);
    return;
  }
  before = atomic_fetch_sub_explicit(&traced_current, size, memory_order_relaxed);
  while (before > peak && !atomic_compare_exchange_weak_explicit(&traced_peak, &peak, before,
                                                                 memory_order_relaxed,
                                                                 memory_order_relaxed))
    ;
}

/* Accounts for a traced entry leaving (sign -1) or entering (+1) a table. */
static void count_entry(uint64_t meta, int sign) {
  if (!tm__tb_traced(tm__meta_tb(meta)))
    return;
  if (sign > 0)
    counters_add(tm__meta_size(meta));
  else
    counters_sub(tm__meta_size(meta));
}

void tm__counters_get(size_t *current, size_t *peak) {
  tm__tables_lock_all(); /* so that current <= peak always holds for the caller */
  size_t now = atomic_load(&traced_current), highest = atomic_load(&traced_peak);
  if (current)
    *current = now;
  if (peak)
    *peak = highest > now ? highest : now; /* the total may be at a maximum no free has seen */
  tm__tables_unlock_all();
}

void tm__counters_reset_peak(void) {
  tm__tables_lock_all();
  atomic_store(&traced_peak, atomic_load(&traced_current));
  tm__tables_unlock_all();
}

size_t tm__lost_traces(void) { return atomic_load(&lost_traces); }

/* The malloc domain's table holds traced blocks only (registered ones go to the registry's), so its
 * entry count is the number of traced blocks: no counter of its own for every hook to update. */
size_t tm__traced_blocks(void) {
  tm__table_lock_all(&main_table);
  size_t n = tm__table_count_unlocked(&main_table);
  tm__table_unlock_all(&main_table);
  return n;
}

size_t tm__traces_memory(void) {
  return tm__bitmap_bytes(&internal_blocks) + sizeof main_table + sizeof registry_table;
}

/* ---- domains ----------------------------------------------------------------------------------- */

tm__table *tm__domain_table(unsigned int domain, bool create) {
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
  if (table == NULL && n < TM_MAX_DOMAINS && (table = tm__map(sizeof *table)) != NULL) {
    domains[n].domain = domain;
    domains[n].table = table;
    atomic_store_explicit(&ndomains, n + 1, memory_order_release);
  }
  pthread_mutex_unlock(&domains_lock);
  return table;
}

bool tm__domains_full(void) { return atomic_load(&ndomains) >= TM_MAX_DOMAINS; }

void tm__tables_lock_all(void) {
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    tm__table_lock_all(domains[i].table);
}

void tm__tables_unlock_all(void) {
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = n; i-- > 0;)
    tm__table_unlock_all(domains[i].table);
}

/* Moves every trace of the malloc domain into the registry, as a registered block. Both tables
 * locked. */
static void traces_register_unlocked(void) {
  for (size_t s = 0; s < TM_TABLE_SHARDS; s++) {
    const tm__shard *sh = &main_table.shards[s];
    for (size_t i = 0; sh->slots && sh->used != 0 && i <= sh->mask; i++) {
      uintptr_t key = sh->slots[i].key;
      if (key == 0)
        continue;
      uint64_t hash = tm__hash_ptr(key), old;
      bool failed;
      tm__shard_put_unlocked(tm__table_shard(&registry_table, hash), key, hash,
                             tm__meta_pack(tm__meta_size(sh->slots[i].meta), TM_TB_UNTRACED),
                             &old, &failed);
    }
  }
}

void tm__traces_clear(void) {
  tm__tables_lock_all();
  tm__table_lock_all(&registry_table);
  bool registry = atomic_load(&tm__hooks_active) & TM__HOOKS_REGISTRY;
  if (registry && tm__table_count_unlocked(&main_table) != 0)
    traces_register_unlocked();
  tm__table_unlock_all(&registry_table);
  size_t n = atomic_load_explicit(&ndomains, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    for (size_t s = 0; s < TM_TABLE_SHARDS; s++)
      tm__shard_clear_unlocked(&domains[i].table->shards[s]);
  atomic_store(&traced_current, 0);
  atomic_store(&traced_peak, 0);
  atomic_store(&lost_traces, 0);
  tm__tables_small_again(); /* the registry's table is not cleared: it grows again if large */
  tm__tables_unlock_all();
}

void tm__internal_clear(void) { tm__bitmap_reset(&internal_blocks); }

void tm__fork_lock(void) {
  pthread_mutex_lock(&domains_lock);
  tm__tables_lock_all();
  tm__table_lock_all(&registry_table);
}

void tm__fork_unlock(void) {
  tm__table_unlock_all(&registry_table);
  tm__tables_unlock_all();
  pthread_mutex_unlock(&domains_lock);
}

/* ---- recording --------------------------------------------------------------------------------- */

/* Stores key => meta in table, replacing an entry of the same key. Holds the shard lock. Returns
 * 0, or TM_ENOMEM when the shard is full and cannot grow. */
static int entry_put(tm__table *table, uintptr_t key, uint64_t meta);

/* A traced block whose insert came after tracing stopped: registered instead. Out of line, so that
 * entry_put() is not recursive and inlines into its callers on the hot path. */
static __attribute__((noinline)) int entry_put_late(uintptr_t key, uint64_t meta) {
  return entry_put(&main_table, key, tm__meta_pack(tm__meta_size(meta), TM_TB_UNTRACED));
}

static inline int entry_put(tm__table *table, uintptr_t key, uint64_t meta) {
  uint64_t hash = tm__hash_ptr(key);
  bool traced = tm__tb_traced(tm__meta_tb(meta));
  if (!traced) { /* a registered block: the registry's table, when it is on */
    if (table != &main_table)
      return 0;
    table = &registry_table;
  }
  tm__shard *s = tm__table_shard(table, hash);
  uint64_t old;
  bool failed;
  int rc = 0;
  bool locked = tm__lock_acquire_if_threaded(&s->lock);
  /* Re-checked under the lock: tm_stop() clears each shard under its lock after clearing the flag,
   * so a racing insert either lands before that clear or sees the flag down. A traced block that
   * comes too late is registered instead, when the registry is on. */
  int active = atomic_load(&tm__hooks_active);
  if (traced && !(active & TM__HOOKS_TRACING)) {
    tm__lock_release_if(&s->lock, locked);
    return table == &main_table ? entry_put_late(key, meta) : 0;
  }
  if (traced || (active & TM__HOOKS_REGISTRY)) {
    if (tm__shard_put_unlocked(s, key, hash, meta, &old, &failed))
      count_entry(old, -1);
    if (failed)
      rc = TM_ENOMEM;
    else
      count_entry(meta, +1);
  }
  tm__lock_release_if(&s->lock, locked);
  return rc;
}

/* Takes the watch's copy when this thread's insert crossed the limit (no lock held here). */
static void peak_watch_take(void) {
  int crossed = 2;
  if (!atomic_compare_exchange_strong(&watch_state, &crossed, 3))
    return;
  tm__guard_depth++;
  size_t n;
  int limit;
  tm__raw_trace *copy = tm__traces_copy(&n, &limit, NULL);
  tm__guard_depth--;
  watch_traces = copy;
  watch_n = copy != NULL ? n : 0;
  watch_tb_limit = limit;
  atomic_store(&watch_state, 0);
  tm__stack_scrub(); /* the copy's calls held every block's address, deeper than the hook's scrub */
}

int tm__trace_put(tm__table *table, uintptr_t ptr, size_t size, uint32_t tb) {
  if (tb == 0 || size > TM_SIZE_MAX)
    return TM_ENOMEM;
  int rc = entry_put(table, ptr, tm__meta_pack(size, tb));
  if (__builtin_expect(atomic_load_explicit(&watch_state, memory_order_relaxed) == 2, 0))
    peak_watch_take();
  return rc;
}

void tm__peak_watch(size_t limit) {
  atomic_store(&watch_limit, 0);
  atomic_store(&watch_state, 0);
  tm__guard_depth++;
  free(watch_traces);
  tm__guard_depth--;
  watch_traces = NULL;
  watch_n = 0;
  if (limit == 0)
    return;
  atomic_store(&watch_state, 1);
  atomic_store(&watch_limit, limit);
  if (atomic_load(&traced_current) > limit) { /* passed already */
    int armed = 1;
    if (atomic_compare_exchange_strong(&watch_state, &armed, 2))
      peak_watch_take();
  }
}

const tm__raw_trace *tm__peak_watch_traces(size_t *n, int *limit) {
  if (atomic_load(&watch_state) != 0) {
    *n = 0;
    return NULL;
  }
  *n = watch_n;
  *limit = watch_tb_limit;
  return watch_traces;
}

bool tm__trace_remove(tm__table *table, uintptr_t ptr, uint64_t *meta) {
  uint64_t hash = tm__hash_ptr(ptr);
  tm__shard *s = tm__table_shard(table, hash);
  bool locked = tm__lock_acquire_if_threaded(&s->lock);
  bool found = tm__shard_remove_unlocked(s, ptr, hash, meta);
  if (found)
    count_entry(*meta, -1);
  tm__lock_release_if(&s->lock, locked);
  return found;
}

/* Forgets ptr when it is one of the tracer's blocks; returns whether it was. Lock-free; allocates
 * nothing. Out of line: the free hook's common path stays short. */
static __attribute__((noinline)) bool internal_forget(void *ptr) {
  if (!tm__bitmap_contains(&internal_blocks, (uintptr_t)ptr))
    return false;
  tm__bitmap_remove(&internal_blocks, (uintptr_t)ptr, tm__hooks_usable_size(ptr));
  return true;
}

void tm__record_internal(void *ptr) {
  tm__bitmap_add(&internal_blocks, (uintptr_t)ptr, tm__hooks_usable_size(ptr));
}

bool tm__internal_contains(void *ptr) {
  return tm__bitmap_contains(&internal_blocks, (uintptr_t)ptr);
}

void tm__record_trace(void *ptr, size_t size, uint32_t tb) {
  if (tm__trace_put(&main_table, (uintptr_t)ptr, size, tb) != 0 && tm__tb_traced(tb))
    atomic_fetch_add_explicit(&lost_traces, 1, memory_order_relaxed);
}

void tm__record_untraced(void *ptr, size_t size) {
  if (size <= TM_SIZE_MAX)
    entry_put(&main_table, (uintptr_t)ptr,
              tm__meta_pack(size, tm__pause_hides() ? TM_TB_PAUSED : TM_TB_UNTRACED));
}

void tm__trace_prefetch_slot(const void *ptr) {
  uint64_t hash = tm__hash_ptr((uintptr_t)ptr);
  const tm__shard *s = tm__table_shard(&main_table, hash);
  tm__entry *slots = __atomic_load_n(&s->slots, __ATOMIC_RELAXED);
  size_t mask = __atomic_load_n(&s->mask, __ATOMIC_RELAXED);
  /* A prefetch never faults: a stale array (the shard grew meanwhile) costs a wasted load. */
  if (slots != NULL)
    __builtin_prefetch(&slots[tm__slot_home(mask, (uintptr_t)ptr, hash)], 1);
}

bool tm__record_free(void *ptr, uint64_t *meta) {
  /* With the guard held, a free is most often of the tracer's own block; but code the tracer
   * calls also frees the program's blocks (the loader reallocating its scope arrays in a dlopen()
   * of ours, libc's caches): those are forgotten as below, or a registered or traced address would
   * stay behind the free and shadow the next block malloc puts there. */
  if (tm__guard_held() && internal_forget(ptr))
    return false;
  /* Two cache misses in a large live set: the block's slot, and the block's malloc header that the
   * real free reads next. Asking for both first lets them overlap. */
  tm__trace_prefetch(ptr);
  __builtin_prefetch((const char *)ptr - 2 * sizeof(size_t), 1);
  bool found = tm__trace_remove(&main_table, (uintptr_t)ptr, meta);
  if (!found && (atomic_load_explicit(&tm__hooks_active, memory_order_relaxed) &
                 TM__HOOKS_REGISTRY))
    found = tm__trace_remove(&registry_table, (uintptr_t)ptr, meta); /* restored as registered */
  /* A block the tracer allocated and handed to the program (a formatted string, say). */
  if (!found)
    (void)internal_forget(ptr);
  return found;
}

void tm__record_restore(void *ptr, uint64_t meta) {
  tm__record_trace(ptr, tm__meta_size(meta), tm__meta_tb(meta));
}

/* ---- the heap registry ------------------------------------------------------------------------- */

/* Defined (non-zero) by a program that wants every live block known: the Check plugin does. A
 * weak reference: the linker exports the program's definition to this library when it has one. */
extern const int tm_heap_registry_wanted __attribute__((weak));

/* Sets *data when the first object dl_iterate_phdr() reports (the program) has the note that
 * TM_HEAP_REGISTRY puts in its PT_NOTE segment. */
static int registry_note_find(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  for (size_t i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
      const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
      size_t name = (n->n_namesz + 3u) & ~(size_t)3, desc = (n->n_descsz + 3u) & ~(size_t)3;
      if ((size_t)(end - p) - sizeof *n < name + desc)
        break;
      if (n->n_namesz == sizeof "tracemalloc" &&
          n->n_type == TM__REGISTRY_NOTE_TYPE &&
          memcmp(p + sizeof *n, "tracemalloc", sizeof "tracemalloc") == 0)
        *(bool *)data = true;
      p += sizeof *n + name + desc;
    }
  }
  return 1; /* the program only */
}

void tm__registry_decide(const char *env) {
  bool wanted = &tm_heap_registry_wanted != NULL && tm_heap_registry_wanted != 0;
  if (!wanted)
    dl_iterate_phdr(registry_note_find, &wanted);
  if (env != NULL && env[0] != '\0')
    wanted = env[0] != '0';
  if (!wanted)
    tm__registry_off();
}

void tm__registry_off(void) {
  if (!(atomic_fetch_and(&tm__hooks_active, ~TM__HOOKS_REGISTRY) & TM__HOOKS_REGISTRY))
    return;
  /* Forget what was registered before this decision; traced blocks stay. */
  tm__table_lock_all(&registry_table);
  for (size_t s = 0; s < TM_TABLE_SHARDS; s++)
    tm__shard_clear_unlocked(&registry_table.shards[s]);
  tm__table_unlock_all(&registry_table);
}

/* ---- what the analysis layer reads (engine.h) -------------------------------------------------- */

tm__raw_trace *tm__traces_copy(size_t *n, int *limit, bool *failed) {
  *n = 0;
  *limit = atomic_load(&tm__traceback_limit);
  if (failed)
    *failed = false;
  tm__tables_lock_all();
  size_t nd = atomic_load_explicit(&ndomains, memory_order_acquire);
  size_t total = tm__table_count_unlocked(&main_table);
  for (size_t d = 1; d < nd; d++)
    total += tm__table_count_unlocked(domains[d].table);
  /* Allocating with the table locks held is safe: with the guard held, malloc only touches the
   * internal bitmap, which takes no lock. */
  tm__raw_trace *out = total ? malloc(total * sizeof *out) : NULL;
  if (out != NULL) {
    for (size_t d = 0; d < nd; d++) {
      for (size_t s = 0; s < TM_TABLE_SHARDS; s++) {
        const tm__shard *sh = &domains[d].table->shards[s];
        for (size_t i = 0; sh->slots && i <= sh->mask; i++) {
          uint64_t meta = sh->slots[i].meta;
          if (sh->slots[i].key == 0 || !tm__tb_traced(tm__meta_tb(meta)))
            continue;
          out[*n] = (tm__raw_trace){sh->slots[i].key, tm__meta_size(meta), tm__meta_tb(meta),
                                    domains[d].domain};
          (*n)++;
        }
      }
    }
  } else if (total && failed) {
    *failed = true;
  }
  tm__tables_unlock_all();
  return out;
}

tm__raw_trace *tm__blocks_copy_locked(size_t *n) {
  const tm__table *tables[2] = {&main_table, &registry_table};
  *n = tm__table_count_unlocked(&main_table) + tm__table_count_unlocked(&registry_table);
  tm__raw_trace *out = *n ? malloc(*n * sizeof *out) : NULL;
  if (out == NULL) {
    *n = 0;
    return NULL;
  }
  size_t k = 0;
  for (size_t t = 0; t < 2; t++) {
    for (size_t s = 0; s < TM_TABLE_SHARDS; s++) {
      const tm__shard *sh = &tables[t]->shards[s];
      for (size_t i = 0; sh->slots && i <= sh->mask; i++) {
        if (sh->slots[i].key == 0)
          continue;
        uint64_t meta = sh->slots[i].meta;
        out[k++] = (tm__raw_trace){sh->slots[i].key, tm__meta_size(meta), tm__meta_tb(meta), 0};
      }
    }
  }
  *n = k;
  return out;
}

void tm__blocks_lock(void) {
  tm__table_lock_all(&main_table);
  tm__table_lock_all(&registry_table);
}

void tm__blocks_unlock(void) {
  tm__table_unlock_all(&registry_table);
  tm__table_unlock_all(&main_table);
}

bool tm__trace_find(uintptr_t ptr, tm__raw_trace *out) {
  uint64_t hash = tm__hash_ptr(ptr);
  tm__shard *s = tm__table_shard(&main_table, hash);
  uint64_t meta;
  tm__lock_acquire(&s->lock);
  bool found = tm__shard_get_unlocked(s, ptr, hash, &meta);
  tm__lock_release(&s->lock);
  if (!found || !tm__tb_traced(tm__meta_tb(meta)))
    return false;
  *out = (tm__raw_trace){ptr, tm__meta_size(meta), tm__meta_tb(meta), 0};
  return true;
}
