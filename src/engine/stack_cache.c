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

static size_t table_bytes(uint32_t mask) { return ((size_t)mask + 1) * 2 * sizeof(tm__stack_entry); }

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

/* Returns the thread's table, mapped or grown as its misses ask (each time it has missed 16 times
 * per set); NULL without memory. */
static tm__stack_entry *table_get(tm__scratch *s) {
  uint32_t sets = s->stack_cache != NULL ? s->stack_cache_mask + 1 : 0;
  s->stack_cache_misses++;
  if (sets != 0 && (sets >= TM_STACK_CACHE_MAX_SETS || s->stack_cache_misses < 16 * sets))
    return s->stack_cache;
  pthread_once(&atfork_once, atfork_register);
  uint32_t want = sets == 0 ? TM_STACK_CACHE_MIN_SETS : sets * 4;
  if (want > TM_STACK_CACHE_MAX_SETS)
    want = TM_STACK_CACHE_MAX_SETS;
  tm__stack_entry *t = tm__map(table_bytes(want - 1));
  s->stack_cache_misses = 0; /* without memory: try again after as many misses */
  if (t == NULL)
    return s->stack_cache;
  tm__stack_cache_release(s); /* its stacks are learned anew */
  s->stack_cache = t;
  s->stack_cache_bytes = table_bytes(want - 1);
  s->stack_cache_mask = want - 1;
  return t;
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
  for (;;) {
    ips[n++] = ip;
    if (n == max)
      break;
    tm__frame_rule rule = tm__frame_rule_of(ip);
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
#define LAYOUTS (1u << LAYOUT_BITS)
#define LAYOUT_ARENA (64u * 1024u)

static tm__lock layout_lock;
static const tm__stack_layout **layout_table; /* open addressing on hash, under layout_lock */
static size_t layout_count;
static char *layout_arena;
static size_t layout_left;

/* Returns the published layout equal to offsets[0..n), published now if new; NULL when out of
 * memory or room. */
static const tm__stack_layout *layout_intern(const int16_t *offsets, unsigned n) {
  uint64_t h = n;
  for (unsigned k = 0; k < n; k++)
    h = tm__stack_mix(h, (uint16_t)offsets[k]);
  h ^= h >> 29;
  const tm__stack_layout *found = NULL;
  tm__lock_acquire(&layout_lock);
  if (layout_table == NULL)
    layout_table = tm__map(LAYOUTS * sizeof *layout_table);
  if (layout_table != NULL) {
    size_t i = (size_t)(h >> (64 - LAYOUT_BITS));
    for (; layout_table[i] != NULL; i = (i + 1) & (LAYOUTS - 1)) {
      const tm__stack_layout *l = layout_table[i];
      if (l->hash == h && l->nslots == n && memcmp(l->offset, offsets, n * sizeof *offsets) == 0) {
        found = l;
        break;
      }
    }
    size_t need = (sizeof(tm__stack_layout) + n * sizeof *offsets + 7) & ~(size_t)7;
    if (found == NULL && layout_count + 1 < LAYOUTS / 2) {
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
        memcpy(l->offset, offsets, n * sizeof *offsets);
        layout_table[i] = l;
        layout_count++;
        found = l;
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

/* ---- the miss -------------------------------------------------------------------------------- */

/* How much an entry is worth keeping. */
static int worth(const tm__stack_entry *e, uint32_t generation) {
  if (e->ra == 0 || e->generation != generation)
    return 0;
  return e->layout == NULL ? 1 : 2;
}

uint32_t tm__stack_cache_miss(tm__scratch *scratch, uintptr_t ra, uintptr_t cfa, uintptr_t fp,
                              int limit) {
  _Static_assert(TM_SCRATCH_FRAMES >= TM_STACK_CACHE_FRAMES, "capture buffer too small");
  uintptr_t *ips = (uintptr_t *)scratch->capture;
  int16_t offsets[TM_STACK_CACHE_SLOTS];
  unsigned nslots = 0;
  if (limit < 1 || limit >= TM_STACK_CACHE_FRAMES)
    return 0;
  int n = tm__stack_walk(ra, cfa, fp, ips, limit + 1, offsets, &nslots, TM_STACK_CACHE_SLOTS);
  if (n < 1)
    return 0;
  bool truncated = n > limit;
  if (truncated)
    n = limit;
  uint32_t tb = tm__intern(ips, n, truncated, (uint32_t)n + (truncated ? 1u : 0u));
  if (tb == 0 || nslots == UINT_MAX)
    return tb;
  tm__stack_entry *t = table_get(scratch);
  if (t == NULL)
    return tb;
  tm__stack_entry *set = tm__stack_set(t, scratch->stack_cache_mask, ra, cfa), *e = NULL;
  uint32_t generation = scratch->stack_generation;
  for (int way = 0; way < 2; way++)
    if (set[way].ra == ra && set[way].cfa == cfa && set[way].limit == (uint32_t)limit &&
        set[way].generation == generation)
      e = &set[way];
  if (e != NULL && e->tb == tb) {
    /* Seen before (a candidate), or learned with other words (a frame pointer that differs):
     * learn this walk. */
    const tm__stack_layout *l = layout_intern(offsets, nslots);
    if (l != NULL) {
      e->check = tm__stack_hash(l->offset, l->nslots, cfa);
      e->layout = l;
    }
    return tb;
  }
  if (e == NULL) /* a new key: into the way worth less (stale < empty < candidate < learned) */
    e = worth(&set[0], generation) <= worth(&set[1], generation) ? &set[0] : &set[1];
  /* First sight of this stack at this key: a candidate, so that stacks seen once do not push out
   * the ones seen again and again. */
  *e = (tm__stack_entry){.ra = ra, .cfa = cfa, .tb = tb, .limit = (uint32_t)limit,
                         .generation = generation};
  return tb;
}
