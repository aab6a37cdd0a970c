/* stack_cache.c — the miss path: a walk with the frame rules, and the thread's table (see
 * stack_cache.h). */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "frame_rules.h"
#include "guard.h"
#include "lock.h"
#include "scratch.h"
#include "stack_cache.h"
#include "traceback_intern.h"


/* The calling thread's stack, [lo, hi); lo == hi == 1 when it could not be read. */
static __thread uintptr_t stack_lo, stack_hi __attribute__((tls_model("initial-exec")));

static bool stack_bounds(void) {
  if (stack_hi == 0) {
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    stack_lo = stack_hi = 1;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != NULL && size != 0) {
        stack_lo = (uintptr_t)addr;
        stack_hi = (uintptr_t)addr + size;
      }
      pthread_attr_destroy(&attr);
    }
  }
  return stack_hi > stack_lo;
}

/* ---- the thread's table: mapped on its first miss, grown, given back at its exit ------------- */

static size_t table_bytes(uint32_t mask) {
  return ((size_t)mask + 1) * TM_STACK_CACHE_WAYS * sizeof(tm__stack_entry);
}

void tm__stack_cache_release(struct tm__scratch *scratch) {
  if (scratch->stack_cache != NULL)
    tm__unmap(scratch->stack_cache, table_bytes(scratch->stack_cache_mask));
  scratch->stack_cache = NULL;
  scratch->stack_cache_bytes = 0;
  scratch->stack_cache_mask = 0;
}

static void layouts_lock(void);
static void layouts_unlock(void);
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void) { pthread_atfork(layouts_lock, layouts_unlock, layouts_unlock); }

/* Moves the entries of table old (old_mask + 1 sets) into t (mask + 1 sets, more): an entry's set
 * gives the low bits of its key's set index, its tag the others (stack_cache.h). An entry that
 * finds its new set full is dropped. */
static void table_move(tm__stack_entry *t, uint32_t mask, const tm__stack_entry *old,
                       uint32_t old_mask) {
  _Static_assert(TM_STACK_CACHE_MIN_SETS == 16, "the tag starts 4 bits above the set index");
  for (uint32_t set = 0; set <= old_mask; set++)
    for (int way = 0; way < TM_STACK_CACHE_WAYS; way++) {
      const tm__stack_entry *e = &old[set * TM_STACK_CACHE_WAYS + way];
      if ((e->layout & TM_STACK_LAYOUT_MASK) == 0)
        continue;
      uint32_t index = (((uint32_t)e->tag << 4) | (set & 15u)) & mask;
      tm__stack_entry *to = &t[index * TM_STACK_CACHE_WAYS];
      for (int w = 0; w < TM_STACK_CACHE_WAYS; w++)
        if ((to[w].layout & TM_STACK_LAYOUT_MASK) == 0) {
          to[w] = *e;
          break;
        }
    }
}

/* Returns the thread's table, mapped or grown as its misses ask (each time it has missed as
 * often as it has entries; its entries move to the larger table); NULL without memory. */
static tm__stack_entry *table_get(tm__scratch *s) {
  uint32_t sets = s->stack_cache != NULL ? s->stack_cache_mask + 1 : 0;
  s->stack_cache_misses++;
  if (sets != 0 && (sets >= TM_STACK_CACHE_MAX_SETS ||
                    s->stack_cache_misses < TM_STACK_CACHE_WAYS * sets))
    return s->stack_cache;
  pthread_once(&atfork_once, atfork_register);
  uint32_t want = sets == 0 ? TM_STACK_CACHE_MIN_SETS : sets * 4;
  if (want > TM_STACK_CACHE_MAX_SETS)
    want = TM_STACK_CACHE_MAX_SETS;
  tm__stack_entry *t = tm__map(table_bytes(want - 1));
  s->stack_cache_misses = 0; /* without memory: try again after as many misses */
  if (t == NULL)
    return s->stack_cache;
  if (s->stack_cache != NULL)
    table_move(t, want - 1, s->stack_cache, s->stack_cache_mask);
  tm__stack_cache_release(s);
  s->stack_cache = t;
  s->stack_cache_bytes = table_bytes(want - 1);
  s->stack_cache_mask = want - 1;
  return t;
}

void tm__stack_cache_reserve(uint32_t sets) {
  tm__scratch *s = tm__scratch_get();
  while (s != NULL && (s->stack_cache == NULL || s->stack_cache_mask + 1 < sets) &&
         (s->stack_cache == NULL || s->stack_cache_mask + 1 < TM_STACK_CACHE_MAX_SETS)) {
    s->stack_cache_misses = UINT32_MAX - 1; /* the next miss grows it */
    if (table_get(s) == NULL)
      break;
  }
  if (s != NULL)
    s->stack_cache_misses = 0;
}

void tm__stack_cache_empty(struct tm__scratch *s) {
  if (s->stack_cache != NULL)
    memset(s->stack_cache, 0, table_bytes(s->stack_cache_mask));
  s->stack_cache_misses = 0;
}

void tm__stack_cache_clear(void) {
  if (tm__scratch_self != NULL)
    tm__stack_cache_empty(tm__scratch_self);
}

/* ---- the walk -------------------------------------------------------------------------------- */

/* Appends the word at addr to the checked slots; false when its offset does not fit. */
static inline bool add_slot(int16_t *offsets, unsigned *n, unsigned max, uintptr_t cfa,
                            uintptr_t addr) {
  intptr_t off = (intptr_t)(addr - cfa);
  if (*n >= max || off > INT16_MAX || off < INT16_MIN)
    return false;
  offsets[(*n)++] = (int16_t)off;
  return true;
}

int tm__stack_walk(uintptr_t ra, uintptr_t cfa, uintptr_t fp, uintptr_t *ips, int max,
                   int16_t *offsets, unsigned *nslots, unsigned max_slots) {
#if defined(__x86_64__)
  if (max < 1 || fp + 16 != cfa || !stack_bounds() || cfa < stack_lo || cfa >= stack_hi)
    return -1;
  const uintptr_t hi = stack_hi;
  uintptr_t ip = ra, sp = cfa;
  uintptr_t rbp_at = fp, rbp = *(const uintptr_t *)fp; /* the caller's rbp, saved by the hook */
  unsigned n_slots = 0;
  bool learn = offsets != NULL;
  int n = 0;
  /* A recursion repeats its return address frame after frame (an interpreter's eval loop, a
   * descent): the last rule read is kept, and the same address does not look it up again. */
  uintptr_t last_ip = 0;
  tm__frame_rule rule = {0};
  for (;;) {
    ips[n++] = ip;
    if (n == max)
      break;
    if (ip != last_ip) {
      rule = tm__frame_rule_of(ip);
      last_ip = ip;
    }
    if (rule.kind == TM_RULE_LAST)
      break;
    if (rule.kind != TM_RULE_STEP)
      return -1;
    uintptr_t next;
    if (rule.cfa_rbp) {
      next = rbp + (uintptr_t)(intptr_t)rule.cfa_offset;
      if (learn)
        learn = add_slot(offsets, &n_slots, max_slots, cfa, rbp_at);
    } else {
      next = sp + (uintptr_t)(intptr_t)rule.cfa_offset;
    }
    if (next <= sp || next > hi || (next & 7) != 0)
      return -1;
    uintptr_t ra_at = next - sizeof(uintptr_t);
    ip = *(const uintptr_t *)ra_at;
    if (learn)
      learn = add_slot(offsets, &n_slots, max_slots, cfa, ra_at);
    if (rule.rbp_saved) {
      uintptr_t at = next + (uintptr_t)(intptr_t)rule.rbp_offset;
      if (at < sp)
        return -1;
      rbp_at = at;
      rbp = *(const uintptr_t *)at;
    }
    sp = next;
    if (ip == 0)
      break; /* the end of the stack, as libunwind sees it */
  }
  if (nslots != NULL)
    *nslots = learn ? n_slots : UINT_MAX;
  return n;
#else
  (void)ra, (void)cfa, (void)fp, (void)ips, (void)max, (void)offsets, (void)nslots, (void)max_slots;
  return -1;
#endif
}

/* ---- layouts: each distinct list of offsets once, process-wide --------------------------------- */

#define LAYOUT_BITS 16
#define LAYOUT_SLOTS (1u << LAYOUT_BITS) /* twice TM_STACK_LAYOUTS: the open table stays half empty */
#define LAYOUT_ARENA (64u * 1024u)

const tm__stack_layout *tm__stack_layouts[TM_STACK_LAYOUTS];

static tm__lock layout_lock;
static uint16_t *layout_table; /* open addressing on hash: ids, under layout_lock */
static unsigned layout_count;  /* the last id given */
static char *layout_arena;
static size_t layout_left;

/* Returns the id of the published layout equal to offsets[0..n), published now if new; 0 when
 * out of memory or ids. */
static uint16_t layout_intern(const int16_t *offsets, unsigned n) {
  uint64_t h = n;
  for (unsigned k = 0; k < n; k++)
    h = tm__stack_mix(h, (uint16_t)offsets[k]);
  h ^= h >> 29;
  uint16_t found = 0;
  tm__lock_acquire(&layout_lock);
  if (layout_table == NULL)
    layout_table = tm__map(LAYOUT_SLOTS * sizeof *layout_table);
  if (layout_table != NULL) {
    size_t i = (size_t)(h >> (64 - LAYOUT_BITS));
    for (; layout_table[i] != 0; i = (i + 1) & (LAYOUT_SLOTS - 1)) {
      const tm__stack_layout *l = tm__stack_layouts[layout_table[i]];
      if (l->hash == h && l->nslots == n && memcmp(l->offset, offsets, n * sizeof *offsets) == 0) {
        found = layout_table[i];
        break;
      }
    }
    size_t need = (sizeof(tm__stack_layout) + n * sizeof *offsets + 7) & ~(size_t)7;
    if (found == 0 && layout_count + 1 < TM_STACK_LAYOUTS) {
      if (need > layout_left) {
        char *fresh = tm__map(LAYOUT_ARENA); /* the old arena's tail is left unused */
        if (fresh != NULL) {
          layout_arena = fresh;
          layout_left = LAYOUT_ARENA;
        }
      }
      if (need <= layout_left) {
        tm__stack_layout *l = (tm__stack_layout *)layout_arena;
        layout_arena += need;
        layout_left -= need;
        l->hash = h;
        l->nslots = n;
        l->reach = 8;
        for (unsigned k = 0; k < n; k++)
          if (offsets[k] + 8 > (int)l->reach)
            l->reach = (uint32_t)(offsets[k] + 8);
        memcpy(l->offset, offsets, n * sizeof *offsets);
        found = (uint16_t)++layout_count;
        /* Published before any entry names it: the entry is written by this thread after. */
        __atomic_store_n(&tm__stack_layouts[found], l, __ATOMIC_RELEASE);
        layout_table[i] = found;
      }
    }
  }
  tm__lock_release(&layout_lock);
  return found;
}

/* Held across fork() (registered on the first table), so that a child never inherits it taken.
 * Taken with no other tracer lock held (and tm__map's inside it), so first in the locking order. */
static void layouts_lock(void) { tm__lock_acquire(&layout_lock); }

static void layouts_unlock(void) { tm__lock_release(&layout_lock); }

/* ---- after a miss --------------------------------------------------------------------------- */

/* Zeroes a local array of BYTES (a multiple of 64) with plain 16-byte stores: the string
 * instruction a memset compiles to costs more to start than the stores, on a path taken by every
 * recording hook while the registry is on. volatile keeps the stores, and keeps them stores. */
#define SCRUB_FUNCTION(name, bytes)                                                                \
  __attribute__((noinline)) void name(void) {                                                      \
    typedef long long zero16 __attribute__((vector_size(16)));                                     \
    zero16 zeros[(bytes) / sizeof(zero16)];                                                        \
    volatile zero16 *z = zeros;                                                                    \
    for (size_t i = 0; i < sizeof zeros / sizeof *zeros; i += 4) {                                 \
      z[i] = (zero16){0, 0};                                                                       \
      z[i + 1] = (zero16){0, 0};                                                                   \
      z[i + 2] = (zero16){0, 0};                                                                   \
      z[i + 3] = (zero16){0, 0};                                                                   \
    }                                                                                              \
  }

SCRUB_FUNCTION(tm__stack_scrub, 4096)       /* deeper than libunwind's and dl_iterate_phdr's calls */
SCRUB_FUNCTION(tm__stack_scrub_walk, 1024)  /* deeper than a walk with cached rules and an intern */
/* A hit's calls and the tables' reach 192 bytes below the hook in gcc 12's -O2 code and 352 in
 * clang 14's (the last copy of a block's address that tests/engine/test_stack_scrub.c finds when
 * the scrub is shorter); unoptimized code, 352 as well, but with frames that grow with every
 * change: twice that. */
#ifdef __OPTIMIZE__
SCRUB_FUNCTION(tm__stack_scrub_small, 384)
#else
SCRUB_FUNCTION(tm__stack_scrub_small, 768)
#endif

/* ---- statistics (TM_CAPTURE_STATS builds only) ------------------------------------------------ */

#ifdef TM_CAPTURE_STATS
#include <stdio.h>
_Atomic unsigned long long tm__capture_stats[TM_CAPTURE_COUNTERS];

/* Prints the counters to stderr at exit. */
__attribute__((destructor)) static void capture_stats_print(void) {
  unsigned long long c[TM_CAPTURE_COUNTERS];
  for (int i = 0; i < TM_CAPTURE_COUNTERS; i++)
    c[i] = tm__capture_stats[i];
  unsigned long long all = c[TM_CAPTURE_HIT] + c[TM_CAPTURE_WALKED] + c[TM_CAPTURE_UNWOUND];
  if (all == 0)
    return;
  dprintf(2,
          "tracemalloc capture stats: %llu captures, hits %llu (%.2f%%), walked %llu (%.2f%%), "
          "libunwind %llu (%.2f%%); misses: new key %llu, words differ %llu, uncacheable %llu; "
          "distinct stacks walked (last id) %llu; hits under a variant key %llu\n",
          all, c[TM_CAPTURE_HIT], 100.0 * (double)c[TM_CAPTURE_HIT] / (double)all,
          c[TM_CAPTURE_WALKED], 100.0 * (double)c[TM_CAPTURE_WALKED] / (double)all,
          c[TM_CAPTURE_UNWOUND], 100.0 * (double)c[TM_CAPTURE_UNWOUND] / (double)all,
          c[TM_CAPTURE_MISS_NEW], c[TM_CAPTURE_MISS_WORDS], c[TM_CAPTURE_MISS_UNCACHEABLE],
          c[TM_CAPTURE_LAST_ID], c[TM_CAPTURE_VARIANT_HIT]);
}

/* Counts why the capture under key missed in the thread's table. */
static void miss_reason_count(tm__scratch *s, uint64_t key, uintptr_t cfa, uintptr_t fp) {
  if (s->stack_cache == NULL || fp + 16 != cfa) {
    TM_CAPTURE_COUNT(TM_CAPTURE_MISS_UNCACHEABLE);
    return;
  }
  const tm__stack_entry *set = tm__stack_set(s->stack_cache, s->stack_cache_mask, key);
  for (int way = 0; way < TM_STACK_CACHE_WAYS; way++)
    if ((set[way].layout & TM_STACK_LAYOUT_MASK) != 0 && set[way].tag == tm__stack_tag(key)) {
      TM_CAPTURE_COUNT(TM_CAPTURE_MISS_WORDS);
      return;
    }
  TM_CAPTURE_COUNT(TM_CAPTURE_MISS_NEW);
}
#endif

/* ---- the miss -------------------------------------------------------------------------------- */

uint32_t tm__stack_cache_miss(tm__scratch *scratch, uintptr_t ra, uintptr_t cfa, uintptr_t fp,
                              int limit, uint64_t key) {
  _Static_assert(TM_SCRATCH_FRAMES >= TM_STACK_CACHE_FRAMES, "capture buffer too small");
  uintptr_t *ips = (uintptr_t *)scratch->capture;
  int16_t offsets[TM_STACK_CACHE_SLOTS];
  unsigned nslots = 0;
#ifdef TM_CAPTURE_STATS
  miss_reason_count(scratch, key, cfa, fp);
#endif
  if (limit < 1 || limit >= TM_STACK_CACHE_FRAMES)
    return 0;
  int n = tm__stack_walk(ra, cfa, fp, ips, limit + 1, offsets, &nslots, TM_STACK_CACHE_SLOTS);
  if (n < 1)
    return 0;
  bool truncated = n > limit;
  if (truncated)
    n = limit;
  bool fresh = false;
  uint32_t tb = tm__intern(ips, n, truncated, (uint32_t)n + (truncated ? 1u : 0u), &fresh);
#ifdef TM_CAPTURE_STATS
  if (tb > tm__capture_stats[TM_CAPTURE_LAST_ID])
    tm__capture_stats[TM_CAPTURE_LAST_ID] = tb;
#endif
  if (tb == 0 || nslots == UINT_MAX || fresh)
    return tb;
  tm__stack_entry *t = table_get(scratch);
  if (t == NULL)
    return tb;
  scratch->stack_lo = stack_lo; /* known: the walk read them */
  scratch->stack_hi = stack_hi;
  uint16_t layout = layout_intern(offsets, nslots);
  if (layout == 0 || tb > TM_STACK_TB_MASK)
    return tb;
  /* A key's third stack and later ones go under variant keys. */
  tm__stack_entry *set = tm__stack_set(t, scratch->stack_cache_mask, key), *e = NULL;
  const tm__stack_layout *first = NULL;
  uint64_t level_key = key;
  for (unsigned level = 0;; level++) {
    int same_key = 0;
    for (int way = 0; way < TM_STACK_CACHE_WAYS; way++) {
      unsigned id = set[way].layout & TM_STACK_LAYOUT_MASK;
      if (id == 0 || set[way].tag != tm__stack_tag(level_key))
        continue;
      const tm__stack_layout *l = tm__stack_layouts[id];
      if (cfa + l->reach > stack_hi)
        continue; /* another key's: the lookup skips it too */
      if (same_key++ == 0)
        first = l;
    }
    if (same_key < TM_STACK_KEY_WAYS || level == TM_STACK_VARIANT_LEVELS)
      break;
    level_key = tm__stack_variant_key(key, first, level, cfa);
    set = tm__stack_set(t, scratch->stack_cache_mask, level_key);
  }
  key = level_key;
  /* Into an empty way, else one not used since the set last evicted (a stack seen once does not
   * push out the ones hit again and again), else any: the set's marks start over. */
  for (int way = 0; way < TM_STACK_CACHE_WAYS && e == NULL; way++)
    if ((set[way].layout & TM_STACK_LAYOUT_MASK) == 0)
      e = &set[way];
  for (int way = 0; way < TM_STACK_CACHE_WAYS && e == NULL; way++)
    if (!(set[way].layout & TM_STACK_USED))
      e = &set[way];
  if (e == NULL) {
    for (int way = 0; way < TM_STACK_CACHE_WAYS; way++)
      set[way].layout &= (uint16_t)~TM_STACK_USED;
    e = &set[scratch->stack_cache_misses % TM_STACK_CACHE_WAYS];
  }
  const tm__stack_layout *l = tm__stack_layouts[layout];
  *e = (tm__stack_entry){.check = tm__stack_hash(l->offset, l->nslots, cfa) ^ key,
                         .tb = tb | tm__stack_fp(l, cfa) << 24,
                         .layout = layout,
                         .tag = tm__stack_tag(key)};
  return tb;
}

uint32_t tm__stack_cache_find_variant(tm__stack_entry *t, uint32_t mask, uint64_t key,
                                      unsigned first, uintptr_t cfa, uintptr_t hi) {
  const tm__stack_layout *l = tm__stack_layouts[first];
  for (unsigned level = 0; level < TM_STACK_VARIANT_LEVELS; level++) {
    uint64_t level_key = tm__stack_variant_key(key, l, level, cfa);
    unsigned any;
    uint32_t tb = tm__stack_set_find(tm__stack_set(t, mask, level_key), level_key, cfa, hi, &any);
    if (tb != 0)
      TM_CAPTURE_COUNT(TM_CAPTURE_VARIANT_HIT);
    if (tb != 0 || any == 0)
      return tb;
    l = tm__stack_layouts[any];
  }
  return 0;
}

